"""Features, providers, models and which model serves which feature."""
