"""Wiring: one worker process hosting the attempt workflow and its activities."""
