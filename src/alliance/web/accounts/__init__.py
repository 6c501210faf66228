"""User accounts: the user model, roles per study (`access`), log-in with throttling, security headers."""
