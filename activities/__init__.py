"""Every side effect of an attempt: database, providers, processor. Each is idempotent under retry."""
