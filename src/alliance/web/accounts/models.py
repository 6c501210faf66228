"""The user model.

A project-specific user model from the first migration, because Django cannot switch to one
later; the web app adds roles (admin, investigator, facilitator, monitor) here.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person who logs in: Django's standard user, kept in the ``accounts`` app."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
