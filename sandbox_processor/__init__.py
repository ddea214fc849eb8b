"""`portalpay processor`: the sandbox payment processor as an HTTP service of its own (SPEC §9)."""
