"""What an API key may do (SPEC §12). A key made without `--scope` may do all of it."""

CUSTOMERS_WRITE = "customers:write"
INVOICES_WRITE = "invoices:write"
PAYMENTS_READ = "payments:read"
EVENTS_READ = "events:read"
WEBHOOKS_WRITE = "webhooks:write"
IMPORTS_WRITE = "imports:write"

ALL_SCOPES: tuple[str, ...] = (
    CUSTOMERS_WRITE,
    INVOICES_WRITE,
    PAYMENTS_READ,
    EVENTS_READ,
    WEBHOOKS_WRITE,
    IMPORTS_WRITE,
)
