"""Spend analytics, budgets and cost recommendations."""
