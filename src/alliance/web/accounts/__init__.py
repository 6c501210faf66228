"""User accounts: the user model, roles per study (`access`), log-in throttled by django-axes
(`throttle`) with an optional second factor (`two_factor`), security headers (`security`)."""
