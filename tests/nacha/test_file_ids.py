"""File id modifiers (36 a day) and trace numbers (ODFI id + 7-digit sequence)."""

import pytest

from domain.nacha.file_ids import FileIdsExhausted, next_file_id_modifier, trace_number, trace_sequence


def test_modifiers_run_a_to_z_then_0_to_9() -> None:
    used: list[str] = []
    for _ in range(36):
        used.append(next_file_id_modifier(used))
    assert "".join(used) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    with pytest.raises(FileIdsExhausted):
        next_file_id_modifier(used)


def test_a_gap_is_filled_before_going_on() -> None:
    assert next_file_id_modifier({"A", "C"}) == "B"
    assert next_file_id_modifier(set()) == "A"


def test_trace_numbers() -> None:
    assert trace_number("23138010", 1) == "231380100000001"
    assert trace_number("23138010", 9_999_999) == "231380109999999"
    assert trace_sequence("231380100004321") == 4321
    for odfi, sequence in (
        ("2313801", 1),
        ("231380104", 1),
        ("23138010", 0),
        ("23138010", 10_000_000),
        ("2313801a", 1),
    ):
        with pytest.raises(ValueError):
            trace_number(odfi, sequence)
    with pytest.raises(ValueError):
        trace_sequence("23138010000001")
