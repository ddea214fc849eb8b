"""What goes into a NACHA file we write, and what comes out of a file a bank sends back.

Frozen dataclasses, no behaviour beyond what the data says about itself: the writer checks and
formats them, the reader builds them. Amounts are integer cents, routing numbers 9 ASCII digits.
"""

from dataclasses import dataclass, field
from datetime import date

# Transaction codes PortalPay originates: a debit, or a zero-dollar prenote, to checking or savings.
CHECKING_DEBIT = "27"
CHECKING_PRENOTE = "28"
SAVINGS_DEBIT = "37"
SAVINGS_PRENOTE = "38"
DEBIT_CODES = frozenset({CHECKING_DEBIT, SAVINGS_DEBIT})
PRENOTE_CODES = frozenset({CHECKING_PRENOTE, SAVINGS_PRENOTE})


@dataclass(frozen=True)
class Originator:
    """The company and its bank, as agreed with the bank (the NACHA_* settings of SPEC §13)."""

    immediate_destination: str  # the bank's 9-digit routing number
    immediate_origin: str  # 10 characters the bank assigns (often "1" + the tax id)
    destination_name: str  # the bank's name, ≤ 23
    origin_name: str  # the company's name as the bank knows it, ≤ 23
    company_name: str  # ≤ 16, what the payer sees on their statement
    company_id: str  # 10 characters
    odfi_id: str  # 8 digits: the bank's routing number without its check digit
    entry_description: str = "INVOICE"  # ≤ 10, also on the payer's statement


@dataclass(frozen=True)
class DebitEntry:
    """One debit (or prenote) to one payer's account."""

    transaction_code: str  # 27/37 debit, 28/38 prenote
    rdfi_routing: str  # 9 digits, the payer's bank
    account_number: str  # ≤ 17
    amount_cents: int  # 0 for a prenote
    individual_id: str  # ≤ 15, identifies the payment; unique
    individual_name: str  # the payer's name; cut to 22 ASCII characters
    trace_number: str  # 15 digits: odfi_id + a 7-digit sequence, never reused

    @property
    def is_prenote(self) -> bool:
        return self.transaction_code in PRENOTE_CODES


@dataclass(frozen=True)
class Batch:
    """The entries to settle on one effective date (one batch per date in a file)."""

    effective_date: date
    entries: tuple[DebitEntry, ...]


@dataclass(frozen=True)
class Problem:
    """A line that could not be read, or a rule a file breaks; line 0 is the file as a whole."""

    line_number: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line_number}: {self.message}" if self.line_number else self.message


@dataclass(frozen=True)
class ReadEntry:
    """An entry detail that originates money (no return or notice attached), as read."""

    line_number: int
    transaction_code: str
    rdfi_routing: str  # 9 digits: the 8-digit RDFI id and its check digit
    account_number: str
    amount_cents: int
    individual_id: str
    individual_name: str
    discretionary_data: str
    trace_number: str
    effective_date: date | None  # from the batch header, None when the header is missing

    @property
    def account_number_masked(self) -> str:
        """What `portalpay nacha show` and logs may print: the last four characters only."""
        return "•••" + self.account_number[-4:]


@dataclass(frozen=True)
class ReturnEntry:
    """A returned entry (addenda 99), matched to ours by `original_trace`.

    The account number of the return is left out on purpose: nothing downstream needs it and it
    must not be stored.
    """

    line_number: int  # of the addenda record
    original_trace: str
    return_code: str  # R01, R03, ...
    original_rdfi: str  # 8 digits
    amount_cents: int
    transaction_code: str  # of the return entry (26/36 for a debit returned)
    trace_number: str  # the return's own trace, assigned by the returning bank
    individual_id: str
    addenda_information: str
    date_of_death: str = ""


@dataclass(frozen=True)
class NoticeOfChange:
    """A notification of change (addenda 98): the receiving bank's corrected details.

    `corrected_data` may hold a full account number (C01, C03, C06, C07): store it encrypted or
    masked (`corrected_data_masked`), never in the clear.
    """

    line_number: int  # of the addenda record
    original_trace: str
    change_code: str  # C01..C13
    corrected_data: str
    original_rdfi: str  # 8 digits
    trace_number: str
    individual_id: str

    @property
    def corrected_data_masked(self) -> str:
        """All but the last four characters of each word replaced: safe for logs and the console."""
        words = self.corrected_data.split()
        return " ".join(("•" * max(len(w) - 4, 0)) + w[-4:] for w in words)


@dataclass(frozen=True)
class ReadResult:
    returns: tuple[ReturnEntry, ...] = ()
    notices: tuple[NoticeOfChange, ...] = ()
    entries: tuple[ReadEntry, ...] = ()
    problems: tuple[Problem, ...] = field(default=())
