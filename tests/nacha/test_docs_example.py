"""docs/nacha.md shows a file and its entry hash worked out by hand: it must stay what the writer writes."""

import re

import achkit

from domain.nacha.model import SAVINGS_DEBIT
from domain.nacha.reader import check_file
from domain.nacha.writer import write_file
from tests.nacha.samples import CHASE, CREATED_AT, ORIGINATOR, REPO, WELLS, debit, one_batch

MARKER = "<!-- nacha-example: the test suite checks this block is what the writer produces -->"


def test_the_worked_example_is_what_the_writer_writes() -> None:
    doc = (REPO / "docs" / "nacha.md").read_text()
    match = re.search(re.escape(MARKER) + r"\n```\n(.*?)```\n", doc, re.DOTALL)
    assert match, "the example block is gone from docs/nacha.md"
    example = match.group(1)
    written = write_file(
        ORIGINATOR,
        one_batch(
            debit(1, routing=CHASE, cents=1_234_56, name="Jane Payer", individual_id="pay_8F2K1"),
            debit(
                2,
                routing=WELLS,
                cents=250_00,
                name="José Núñez",
                account="4455667788",
                individual_id="pay_9QX3M",
                code=SAVINGS_DEBIT,
            ),
        ),
        created_at=CREATED_AT,
        file_id_modifier="A",
    )
    # Compared without trailing spaces, so an editor that strips them does not break the doc's test;
    # the doc says the records are 94 columns.
    assert [line.rstrip() for line in example.splitlines()] == [
        line.rstrip() for line in written.splitlines()
    ]
    assert check_file(written) == [] and achkit.validate(written)["ok"]
    assert int("02100002") + int("09100001") == 11200003 and "0011200003" in example
