"""The proof of authorization as a PDF a bank's dispute desk can read (fpdf2, no browser).

Masked destinations use "•", which fpdf2's core fonts (latin-1) cannot draw: DejaVu (Debian's
`fonts-dejavu-core`) is used when present, else the core fonts with "•" drawn as "*".
"""

import json
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from domain.proof import ProofOfAuthorization, when

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
_GREEN = (0, 110, 50)
_RED = (180, 0, 0)
_GREY = (90, 90, 90)


def _font_dir() -> Path | None:
    return next((d for d in FONT_DIRS if (d / "DejaVuSans.ttf").exists()), None)


class _ProofPdf(FPDF):
    def __init__(self, payment_id: str) -> None:
        super().__init__(format="Letter")
        self.payment_id = payment_id
        fonts = _font_dir()
        self.unicode = fonts is not None
        if fonts is not None:
            self.add_font("Body", "", str(fonts / "DejaVuSans.ttf"))
            self.add_font("Body", "B", str(fonts / "DejaVuSans-Bold.ttf"))
            self.add_font("Mono", "", str(fonts / "DejaVuSansMono.ttf"))
            self.body, self.mono = "Body", "Mono"
        else:
            self.body, self.mono = "Helvetica", "Courier"
        self.set_auto_page_break(True, margin=16)
        self.set_margins(16, 14, 16)

    def t(self, text: str) -> str:
        if self.unicode:
            return text
        return text.replace("•", "*").replace("—", "-").encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.body, "", 7)
        self.set_text_color(*_GREY)
        self.cell(0, 5, self.t(f"Proof of authorization, payment {self.payment_id}"), new_x=XPos.LMARGIN)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0, 0, 0)

    def heading(self, text: str) -> None:
        self.ln(2)
        self.set_font(self.body, "B", 11)
        self.cell(0, 6, self.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        self.set_draw_color(180, 180, 180)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1)

    def field(self, label: str, value: str) -> None:
        self.set_font(self.body, "B", 8.5)
        self.cell(44, 4.6, self.t(label))
        self.set_font(self.body, "", 8.5)
        self.multi_cell(0, 4.6, self.t(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")

    def para(self, text: str, *, size: float = 8.5, style: str = "") -> None:
        self.set_font(self.body, style, size)
        self.multi_cell(0, 4.4, self.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")


def _verification(proof: ProofOfAuthorization) -> list[tuple[str, str]]:
    otp = proof.otp
    if not otp.required:
        return [("One-time passcode", f"Not required: {otp.not_required_reason}")]
    if otp.audit_event_id is None:
        return [("One-time passcode", "No verification is recorded for this payment.")]
    rows = [
        ("One-time passcode", f"Verified at {when(otp.verified_at)}"),
        ("Sent by", f"{'SMS' if otp.channel == 'sms' else otp.channel} to {otp.destination}"),
        ("Code sent at", when(otp.code_sent_at)),
        (
            "Sequence",
            f"code #{otp.send_seq}, entry #{otp.check_seq}; {otp.failed_checks_before} wrong entries before",
        ),
        ("Audit event", f"OTP_VERIFIED #{otp.audit_event_id}"),
    ]
    return rows


def render_proof_pdf(proof: ProofOfAuthorization) -> bytes:
    pdf = _ProofPdf(proof.payment_id)
    pdf.set_title(f"Proof of authorization {proof.payment_id}")
    pdf.set_creator("PortalPay")
    pdf.add_page()

    pdf.set_font(pdf.body, "B", 17)
    pdf.cell(0, 9, pdf.t("Proof of authorization"), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_font(pdf.body, "", 9)
    pdf.set_text_color(*_GREY)
    pdf.multi_cell(
        0,
        4.6,
        pdf.t(
            f"ACH web debit {proof.payment_id} for invoice {proof.invoice_number}. "
            f"Exported {when(proof.chain_checked_at)} by {proof.exported_by}."
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
        align="L",
    )
    pdf.set_text_color(0, 0, 0)
    pdf.ln(1.5)
    pdf.set_font(pdf.body, "B", 10)
    pdf.set_text_color(*(_GREEN if proof.chain_ok else _RED))
    pdf.multi_cell(
        0, 5.5, pdf.t(proof.chain_statement), border=1, new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L"
    )
    pdf.set_text_color(0, 0, 0)

    pdf.heading("Payment")
    pdf.field("Invoice", f"{proof.invoice_number} ({proof.invoice_kind}), customer {proof.customer_name}")
    pdf.field("Amount", proof.amount)
    pdf.field(
        "Debit",
        f"{proof.method.upper()} from the {proof.account_type} account ending in {proof.account_last4}, "
        f"holder {proof.account_holder}",
    )
    status = proof.latest_status + (f", return code {proof.return_code}" if proof.return_code else "")
    status += f" ({proof.decline_reason})" if proof.decline_reason else ""
    pdf.field("Status", status)
    if proof.processor_reference:
        pdf.field("Processor reference", proof.processor_reference)

    pdf.heading("Payer")
    pdf.field("Name", proof.payer.name)
    pdf.field("Destinations on file", ", ".join(proof.payer.destinations) or "(none)")
    pdf.field("How designated", proof.payer.designation)

    pdf.heading("Identity verification")
    for label, value in _verification(proof):
        pdf.field(label, value)

    pdf.heading("Authorization")
    pdf.field("Authorized at", when(proof.authorized_at))
    pdf.field("From IP", proof.ip or "(not recorded)")
    pdf.field("Browser", proof.user_agent or "(not recorded)")
    pdf.para("Wording shown to and agreed by the payer:", style="B")
    pdf.set_fill_color(245, 245, 245)
    pdf.set_font(pdf.body, "", 9)
    pdf.multi_cell(
        0,
        5,
        pdf.t(proof.authorization_text),
        border=1,
        fill=True,
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
        align="L",
    )

    pdf.heading("Timeline (UTC)")
    for entry in proof.timeline:
        pdf.set_font(pdf.mono, "", 7.5)
        pdf.cell(36, 4.4, pdf.t(when(entry.at).removesuffix(" UTC")))
        pdf.set_font(pdf.body, "", 8.5)
        pdf.multi_cell(0, 4.4, pdf.t(entry.what), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")

    pdf.heading(f"Payment status history (from {proof.status_history_source.replace('_', ' ')})")
    for item in proof.status_history:
        extra = ", ".join(x for x in (item.return_code, item.detail) if x)
        pdf.field(when(item.at).removesuffix(" UTC"), item.status + (f" ({extra})" if extra else ""))

    pdf.heading(f"Appendix: audit trail of invoice {proof.invoice_number} ({len(proof.audit_rows)} rows)")
    pdf.para(
        "Each row's hash is an HMAC-SHA256, under the server's chain key, of the previous row's hash and the row's fields; "
        "a changed, removed or inserted row breaks every hash after it. " + proof.chain_statement,
        size=7.5,
    )
    for row in proof.audit_rows:
        pdf.ln(0.8)
        pdf.set_font(pdf.body, "B", 7.5)
        where = f" {row.channel} {row.destination}" if row.destination else ""
        pdf.multi_cell(
            0,
            3.8,
            pdf.t(f"#{row.id}  {when(row.occurred_at)}  {row.event_type}  by {row.actor}{where}"),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
            align="L",
        )
        pdf.set_font(pdf.mono, "", 6.5)
        details = json.dumps(row.details, ensure_ascii=False, sort_keys=True, default=str)
        client = f"ip {row.ip}  ua {row.user_agent}  " if row.ip or row.user_agent else ""
        pdf.multi_cell(
            0, 3.2, pdf.t(f"{client}details {details}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L"
        )
        pdf.multi_cell(
            0,
            3.2,
            pdf.t(f"prev {row.prev_hash}\nhash {row.hash}"),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
            align="L",
        )
    return bytes(pdf.output())
