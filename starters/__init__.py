"""Entry points that start and message workflows: the portal app and the `portalpay` CLI."""
