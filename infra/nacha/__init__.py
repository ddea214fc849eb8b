"""Bank-direct ACH (SPEC §13): sealing held numbers, SFTP to the bank, the entry and file stores,
origination and the reading of returns. The file format itself is domain/nacha (pure)."""
