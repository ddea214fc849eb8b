"""Pure types and business rules of PortalPay: no I/O, safe to import from workflow code."""
