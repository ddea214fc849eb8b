"""Deterministic workflow code only: standard library, temporalio and pure `domain/`."""
