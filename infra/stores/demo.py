"""SPEC §8 demo data. Idempotent: seeding twice changes nothing, and never un-pays an invoice."""

import asyncpg

CUSTOMERS = [
    ("C-1001", "Ada Lovelace"),
    ("C-1002", "Grace Hopper"),
    ("C-1003", "Alan Turing"),
    ("C-1004", "Kurt Goedel"),
]

# (id, customer, name, email, phone, primary, portal payer)
CONTACTS = [
    ("CT-1001-ADA", "C-1001", "Ada Lovelace", "ada@example.com", "+15555550101", True, False),
    ("CT-1001-CHARLES", "C-1001", "Charles Babbage", "charles@example.com", "+15555550102", False, True),
    ("CT-1002-GRACE", "C-1002", "Grace Hopper", "grace@example.com", None, True, False),
    ("CT-1003-ALAN", "C-1003", "Alan Turing", None, "+15555550103", True, False),
    ("CT-1004-KURT", "C-1004", "Kurt Goedel", None, None, True, False),
]

# (id/number, customer, kind, amount cents)
INVOICES = [
    ("INV-1001", "C-1001", "invoice", 125000),
    ("DEP-1001", "C-1001", "deposit", 20000),
    ("INV-1002", "C-1002", "invoice", 48000),
    ("INV-1003", "C-1003", "invoice", 99900),
    ("INV-1004", "C-1004", "invoice", 1500),
]


async def seed_demo(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO customers (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING", CUSTOMERS
        )
        await conn.executemany(
            "INSERT INTO contacts (id, customer_id, name, email, phone, is_primary, portal_payer)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING",
            CONTACTS,
        )
        await conn.executemany(
            "INSERT INTO invoices (id, number, customer_id, kind, amount_cents, balance_cents, currency)"
            " VALUES ($1, $1, $2, $3, $4, $4, 'USD') ON CONFLICT DO NOTHING",
            INVOICES,
        )
