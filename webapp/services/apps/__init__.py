"""Applications: their API keys, the usage they report, and the configuration they read."""
