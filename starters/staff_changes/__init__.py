"""Staff changes to who pays and where codes go (SPEC §10, §11): one code path for the console, the
staff API, /api/v1 and the CSV import, so it lives below the portal and the CLI alike."""
