"""Shared helpers of every domain: errors, validation, ids, money, dates,
serialization, the actor."""
