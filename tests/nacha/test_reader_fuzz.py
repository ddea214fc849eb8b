"""Neither the reader nor the read-back check raises, whatever the bytes: random input and damaged
copies of real files (seeded; replay a failure with NACHA_FUZZ_SEED=<seed>)."""

import os
import random
from pathlib import Path

import pytest

from domain.nacha.model import ReadResult
from domain.nacha.reader import check_file, read_file
from tests.nacha.samples import FIXTURES, GOLDEN

SEED = int(os.environ.get("NACHA_FUZZ_SEED", random.randrange(2**32)))
SOURCES = sorted([*FIXTURES.glob("*.ach"), *(FIXTURES / "crashers").iterdir(), *GOLDEN.glob("*.ach")])
ALPHABET = b"0123456789 9999RC\n\r\x00\x0b\xff\xc3\xa9-#"


def _damaged(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        action = rng.randrange(5)
        at = rng.randrange(len(out) + 1)
        if action == 0 and out:
            out[min(at, len(out) - 1)] = rng.choice(ALPHABET)
        elif action == 1:
            del out[at : at + rng.randint(1, 120)]
        elif action == 2:
            out[at:at] = bytes(rng.choice(ALPHABET) for _ in range(rng.randint(1, 30)))
        elif action == 3:
            start = rng.randrange(len(out) + 1)
            out[at:at] = out[start : start + rng.randint(1, 200)]
        else:
            out = out.replace(b"\n", b"", rng.randint(1, 5))
    return bytes(out)


def _assert_reported(result: ReadResult) -> None:
    assert isinstance(result, ReadResult)
    assert all(p.line_number >= 0 and p.message for p in result.problems)
    # "could not be read" is the reader's last resort: seeing it means a reader bug, not bad input.
    assert not any("could not be read" in p.message for p in result.problems), SEED
    for r in result.returns:
        assert len(r.original_trace) == 15 and r.original_trace.isdigit() and r.return_code[0] == "R"
    for n in result.notices:
        assert len(n.original_trace) == 15 and "C01" <= n.change_code <= "C13"


def test_random_bytes_never_raise() -> None:
    print(f"NACHA_FUZZ_SEED={SEED}")
    rng = random.Random(SEED)
    for _ in range(400):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
        _assert_reported(read_file(data))
        text = data.decode("latin-1")
        _assert_reported(read_file(text))
        assert isinstance(check_file(text), list)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_damaged_copies_of_real_files_never_raise(source: Path) -> None:
    print(f"NACHA_FUZZ_SEED={SEED}")
    rng = random.Random(f"{SEED}-{source.name}")
    original = source.read_bytes()
    for _ in range(60):
        data = _damaged(rng, original)
        _assert_reported(read_file(data))
        text = data.decode("utf-8", errors="replace")
        _assert_reported(read_file(text))
        assert isinstance(check_file(text), list)


def test_an_empty_file_is_a_problem_not_a_crash() -> None:
    assert [p.line_number for p in read_file("").problems] == [0]
    assert read_file("\n\n  \n").problems
