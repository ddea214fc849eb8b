"""`make bench`: PortalPay end to end beside the bare-Temporal floor."""
