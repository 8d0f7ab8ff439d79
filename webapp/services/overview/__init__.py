"""The Global Overview dashboard."""
