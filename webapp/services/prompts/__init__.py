"""Prompt templates, their versions and rendering."""
