"""The prompt page's playground (issue 18): calling models with a provider's stored
credentials, one adapter per protocol, and recording each run."""
