"""The audit trail: writing rows with the change they record, and reading the log."""
