"""Provider health: judged from usage and HTTP health checks."""
