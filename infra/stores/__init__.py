"""The SQL that the portal, the CLI and the activities share: one store per table family."""
