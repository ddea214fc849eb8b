"""NACHA files for bank-direct ACH (SPEC §13): the record layout, the writer, the lenient reader.

Pure code: text in, text or dataclasses out. Uploading, storing and scheduling live elsewhere.
"""
