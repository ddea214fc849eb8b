"""The entry hash: the sum of the 8-digit RDFI ids, of which only the rightmost 10 digits are kept.

A property test over random files (the seed is printed, so a failure can be replayed with
NACHA_HASH_SEED=<seed>), including sums wider than 10 digits, checked three ways: against a sum
computed here, against achkit's validator and against our own read-back.
"""

import os
import random
from datetime import timedelta

import achkit

from domain.nacha.model import Batch
from domain.nacha.reader import check_file, read_file
from domain.nacha.writer import entry_hash, write_file
from tests.nacha.samples import CREATED_AT, EFFECTIVE, ORIGINATOR, debit, random_routing


def _controls(text: str) -> tuple[list[str], str]:
    lines = text.split("\n")
    return [line[10:20] for line in lines if line[:1] == "8"], next(
        line[21:31] for line in lines if line[:1] == "9"
    )


def _high_routing(rng: random.Random) -> str:
    """A routing number whose RDFI id is at least 90,000,000, so a few hundred pass ten digits."""
    while True:
        routing = random_routing(rng)
        if routing[0] == "9":
            return routing


def test_the_entry_hash_keeps_the_rightmost_ten_digits() -> None:
    assert entry_hash(["021000021"]) == "0002100002"
    # 101 x 99,999,999 = 10,099,999,899: eleven digits, the leading 1 is dropped.
    assert entry_hash(["999999999"] * 101) == "0099999899"
    assert entry_hash([]) == "0000000000"


def test_random_files_carry_the_right_entry_hashes() -> None:
    seed = int(os.environ.get("NACHA_HASH_SEED", random.randrange(2**32)))
    print(f"NACHA_HASH_SEED={seed}")
    rng = random.Random(seed)
    wide_sums = 0
    for round_ in range(12):
        # Every third round holds hundreds of high RDFI ids, so its sums pass ten digits.
        wide = round_ % 3 == 0
        size = rng.randint(112, 300) if wide else rng.randint(1, 40)
        sequence = 1
        batches = []
        for day in range(rng.randint(1, 3)):
            entries = []
            for _ in range(size):
                routing = _high_routing(rng) if wide else random_routing(rng)
                entries.append(debit(sequence, routing=routing, cents=rng.randint(1, 9_999_999)))
                sequence += 1
            batches.append(Batch(EFFECTIVE + timedelta(days=day), tuple(entries)))
        text = write_file(ORIGINATOR, batches, created_at=CREATED_AT, file_id_modifier="A")

        sums = [sum(int(e.rdfi_routing[:8]) for e in b.entries) for b in batches]
        wide_sums += sum(total >= 10**10 for total in sums)
        batch_hashes, file_hash = _controls(text)
        assert batch_hashes == [str(total % 10**10).rjust(10, "0") for total in sums], seed
        assert file_hash == str(sum(sums) % 10**10).rjust(10, "0"), seed
        report = achkit.validate(text)
        assert report["ok"], (seed, report["errors"][:3])
        assert check_file(text) == [], seed
        # And the reader gives back what was written, batch by batch, in trace order.
        read_back = [
            (e.effective_date, e.trace_number, e.rdfi_routing, e.amount_cents)
            for e in read_file(text).entries
        ]
        written = [
            (b.effective_date, e.trace_number, e.rdfi_routing, e.amount_cents)
            for b in batches
            for e in b.entries
        ]
        assert read_back == written, seed
    assert wide_sums >= 4, seed  # 112 x 90,000,000 > 10^10: every batch of a wide round


def test_a_batch_whose_hash_sum_passes_ten_digits() -> None:
    rng = random.Random(7)
    entries = tuple(debit(i, routing=_high_routing(rng)) for i in range(1, 151))
    total = sum(int(e.rdfi_routing[:8]) for e in entries)
    assert total >= 10**10
    text = write_file(ORIGINATOR, [Batch(EFFECTIVE, entries)], created_at=CREATED_AT, file_id_modifier="A")
    batch_hashes, file_hash = _controls(text)
    assert batch_hashes == [str(total)[-10:]] and file_hash == str(total)[-10:]
    assert achkit.validate(text)["ok"] and check_file(text) == []
