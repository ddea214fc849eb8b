"""Where every field of every NACHA record sits: the one table the writer and the reader share.

Positions are the 1-based, inclusive columns of the NACHA Operating Rules (Appendix Three), so
the table can be checked against the rule book line by line. A field is numeric (`N`: digits,
right-justified, zero-filled) or alphanumeric (`A`: left-justified, space-filled); a field with a
`constant` always holds that value in files we write.
"""

from collections.abc import Mapping
from dataclasses import dataclass

RECORD_LENGTH = 94
BLOCKING_FACTOR = 10
PADDING_RECORD = "9" * RECORD_LENGTH


@dataclass(frozen=True)
class Field:
    name: str
    start: int  # 1-based, as printed in the rules
    end: int  # inclusive
    kind: str  # "N" numeric or "A" alphanumeric
    constant: str | None = None

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def cut(self, record: str) -> str:
        return record[self.start - 1 : self.end]


@dataclass(frozen=True)
class RecordLayout:
    name: str
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name}")


def _layout(name: str, *fields: tuple[str, int, int, str] | tuple[str, int, int, str, str]) -> RecordLayout:
    return RecordLayout(name, tuple(Field(*f) for f in fields))


FILE_HEADER = _layout(
    "file header",
    ("record_type", 1, 1, "A", "1"),
    ("priority_code", 2, 3, "N", "01"),
    ("immediate_destination", 4, 13, "A"),  # a space, then the bank's 9-digit routing number
    ("immediate_origin", 14, 23, "A"),
    ("file_creation_date", 24, 29, "N"),  # YYMMDD
    ("file_creation_time", 30, 33, "N"),  # HHMM
    ("file_id_modifier", 34, 34, "A"),
    ("record_size", 35, 37, "N", "094"),
    ("blocking_factor", 38, 39, "N", "10"),
    ("format_code", 40, 40, "N", "1"),
    ("immediate_destination_name", 41, 63, "A"),
    ("immediate_origin_name", 64, 86, "A"),
    ("reference_code", 87, 94, "A"),
)

BATCH_HEADER = _layout(
    "batch header",
    ("record_type", 1, 1, "A", "5"),
    ("service_class_code", 2, 4, "N"),
    ("company_name", 5, 20, "A"),
    ("company_discretionary_data", 21, 40, "A"),
    ("company_identification", 41, 50, "A"),
    ("standard_entry_class_code", 51, 53, "A"),
    ("company_entry_description", 54, 63, "A"),
    ("company_descriptive_date", 64, 69, "A"),
    ("effective_entry_date", 70, 75, "N"),  # YYMMDD
    ("settlement_date", 76, 78, "A"),  # filled in by the ACH operator, blank from us
    ("originator_status_code", 79, 79, "A", "1"),
    ("originating_dfi_identification", 80, 87, "N"),
    ("batch_number", 88, 94, "N"),
)

ENTRY_DETAIL = _layout(
    "entry detail",
    ("record_type", 1, 1, "A", "6"),
    ("transaction_code", 2, 3, "N"),
    ("receiving_dfi_identification", 4, 11, "N"),  # the first 8 digits of the routing number
    ("check_digit", 12, 12, "N"),
    ("dfi_account_number", 13, 29, "A"),
    ("amount", 30, 39, "N"),
    ("individual_identification_number", 40, 54, "A"),
    ("individual_name", 55, 76, "A"),
    ("discretionary_data", 77, 78, "A"),  # WEB: the payment type code, `S ` single or `R ` recurring
    ("addenda_record_indicator", 79, 79, "N"),
    ("trace_number", 80, 94, "N"),
)

# Addenda type 05: payment-related information (read, never written by us).
ADDENDA_05 = _layout(
    "addenda",
    ("record_type", 1, 1, "A", "7"),
    ("addenda_type_code", 2, 3, "N", "05"),
    ("payment_related_information", 4, 83, "A"),
    ("addenda_sequence_number", 84, 87, "N"),
    ("entry_detail_sequence_number", 88, 94, "N"),
)

# Addenda type 98: a notification of change (COR) from the receiving bank.
ADDENDA_98 = _layout(
    "notice of change addenda",
    ("record_type", 1, 1, "A", "7"),
    ("addenda_type_code", 2, 3, "N", "98"),
    ("change_code", 4, 6, "A"),
    ("original_entry_trace_number", 7, 21, "N"),
    ("reserved", 22, 27, "A"),
    ("original_receiving_dfi_identification", 28, 35, "N"),
    ("corrected_data", 36, 64, "A"),
    ("reserved_2", 65, 79, "A"),
    ("trace_number", 80, 94, "N"),
)

# Addenda type 99: a return. Dishonored and contested returns reuse columns 22-79 differently;
# the columns we match on (code, original trace, original RDFI) are the same in all three.
ADDENDA_99 = _layout(
    "return addenda",
    ("record_type", 1, 1, "A", "7"),
    ("addenda_type_code", 2, 3, "N", "99"),
    ("return_reason_code", 4, 6, "A"),
    ("original_entry_trace_number", 7, 21, "N"),
    ("date_of_death", 22, 27, "A"),
    ("original_receiving_dfi_identification", 28, 35, "N"),
    ("addenda_information", 36, 79, "A"),
    ("trace_number", 80, 94, "N"),
)

BATCH_CONTROL = _layout(
    "batch control",
    ("record_type", 1, 1, "A", "8"),
    ("service_class_code", 2, 4, "N"),
    ("entry_addenda_count", 5, 10, "N"),
    ("entry_hash", 11, 20, "N"),
    ("total_debit_entry_dollar_amount", 21, 32, "N"),
    ("total_credit_entry_dollar_amount", 33, 44, "N"),
    ("company_identification", 45, 54, "A"),
    ("message_authentication_code", 55, 73, "A"),
    ("reserved", 74, 79, "A"),
    ("originating_dfi_identification", 80, 87, "N"),
    ("batch_number", 88, 94, "N"),
)

FILE_CONTROL = _layout(
    "file control",
    ("record_type", 1, 1, "A", "9"),
    ("batch_count", 2, 7, "N"),
    ("block_count", 8, 13, "N"),
    ("entry_addenda_count", 14, 21, "N"),
    ("entry_hash", 22, 31, "N"),
    ("total_debit_entry_dollar_amount", 32, 43, "N"),
    ("total_credit_entry_dollar_amount", 44, 55, "N"),
    ("reserved", 56, 94, "A"),
)

LAYOUTS: tuple[RecordLayout, ...] = (
    FILE_HEADER,
    BATCH_HEADER,
    ENTRY_DETAIL,
    ADDENDA_05,
    ADDENDA_98,
    ADDENDA_99,
    BATCH_CONTROL,
    FILE_CONTROL,
)


def render(layout: RecordLayout, values: Mapping[str, str | int]) -> str:
    """One record from already-checked values; a value that does not fit is a bug, so it raises.

    Callers cut or refuse over-long values before this point (writer.py); here a value longer
    than its field would shift every column after it, which must never reach a file.
    """
    parts: list[str] = []
    for f in layout.fields:
        raw = values.get(f.name, f.constant if f.constant is not None else "")
        text = str(raw)
        if f.kind == "N":
            if text and not (text.isascii() and text.isdigit()):
                raise ValueError(f"{layout.name} {f.name}: {text!r} is not digits")
            text = text.rjust(f.length, "0")
        else:
            if not all(" " <= ch <= "~" for ch in text):
                raise ValueError(f"{layout.name} {f.name}: not printable ASCII")
            text = text.ljust(f.length)
        if len(text) != f.length:
            raise ValueError(f"{layout.name} {f.name}: {len(text)} characters, the field holds {f.length}")
        parts.append(text)
    record = "".join(parts)
    assert len(record) == RECORD_LENGTH, layout.name
    return record


def cut_fields(layout: RecordLayout, record: str) -> dict[str, str]:
    """Each field's raw text; the record is padded with spaces first, so a short line never raises."""
    padded = record.ljust(RECORD_LENGTH)
    return {f.name: f.cut(padded) for f in layout.fields}
