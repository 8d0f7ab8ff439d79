"""Usage: recording requests, the daily rollup, and reading the figures."""
