"""Sample originator, entries and routing numbers for the NACHA tests."""

import random
from datetime import date, datetime
from pathlib import Path

from domain.nacha.file_ids import trace_number
from domain.nacha.model import CHECKING_DEBIT, CHECKING_PRENOTE, Batch, DebitEntry, Originator

REPO = Path(__file__).resolve().parents[2]
# Worktrees and the main checkout are siblings of `shared`.
FIXTURES = REPO.parent / "shared" / "fixtures" / "nacha"
GOLDEN = Path(__file__).resolve().parent / "golden"

ORIGINATOR = Originator(
    immediate_destination="231380104",
    immediate_origin="1234567890",
    destination_name="Citadel Federal Bank",
    origin_name="Acme Water Works",
    company_name="ACME WATER",
    company_id="1234567890",
    odfi_id="23138010",
    entry_description="INVOICE",
)
CREATED_AT = datetime(2026, 12, 7, 14, 5)
EFFECTIVE = date(2026, 12, 8)

# Real, published routing numbers (check digits valid).
CHASE = "021000021"
WELLS = "091000019"
FED_BOSTON = "011000015"


def debit(
    sequence: int,
    *,
    routing: str = CHASE,
    cents: int = 12_345,
    name: str = "Jane Payer",
    code: str = CHECKING_DEBIT,
    account: str = "000123456789",
    individual_id: str | None = None,
) -> DebitEntry:
    return DebitEntry(
        transaction_code=code,
        rdfi_routing=routing,
        account_number=account,
        amount_cents=cents,
        individual_id=individual_id if individual_id is not None else f"PAY{sequence:07d}",
        individual_name=name,
        trace_number=trace_number(ORIGINATOR.odfi_id, sequence),
    )


def prenote(sequence: int, **kwargs: object) -> DebitEntry:
    return debit(sequence, cents=0, code=kwargs.pop("code", CHECKING_PRENOTE), **kwargs)  # type: ignore[arg-type]


def one_batch(*entries: DebitEntry, effective: date = EFFECTIVE) -> list[Batch]:
    return [Batch(effective, tuple(entries))]


def random_routing(rng: random.Random) -> str:
    """Eight random digits and the ABA check digit that makes them a routing number."""
    while True:
        head = [rng.randrange(10) for _ in range(8)]
        if any(head):
            break
    weighted = sum(d * w for d, w in zip(head, (3, 7, 1, 3, 7, 1, 3, 7), strict=True))
    return "".join(map(str, head)) + str((10 - weighted % 10) % 10)
