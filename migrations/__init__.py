"""Versioned SQL migrations, applied in name order by `portalpay db migrate`."""
