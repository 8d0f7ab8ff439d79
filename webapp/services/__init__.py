"""Use cases. Plain functions with explicit arguments; each one that changes state commits
one transaction that includes its audit row, and raises a domain error instead of
committing anything when a rule is broken."""
