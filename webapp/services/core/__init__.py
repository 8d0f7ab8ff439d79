"""Helpers every domain shares (money, and later dates, ids, validation, serialization)."""
