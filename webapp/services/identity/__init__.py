"""Console users: accounts, passwords, sign-in."""
