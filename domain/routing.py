"""ABA routing transit numbers: the rule lives with the other input rules (domain/input_rules.py)."""

from domain.input_rules import is_valid_aba_routing

__all__ = ["is_valid_aba_routing"]
