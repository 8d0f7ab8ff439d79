"""Applications: their keys, what they report (usage, OpenTelemetry spans), their config."""
