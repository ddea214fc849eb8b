"""Process-level plumbing shared by workers and starters: settings, data converter, database."""
