"""Staff: the staff API, the console, their shared actions and notices (SPEC §4, §10, §11)."""
