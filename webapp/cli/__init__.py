"""flask commands, the seed and the demo data."""

from webapp.cli.commands import register_commands

__all__ = ["register_commands"]
