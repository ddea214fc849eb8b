"""The customer's portal: the pay link's API and page (SPEC §4)."""
