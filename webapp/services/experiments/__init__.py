"""A/B experiments: design, lifecycle, results and their statistics."""
