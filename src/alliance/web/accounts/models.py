"""The user model and study memberships (roles).

A project-specific user model from the first migration, because Django cannot switch to one
later. Roles are per study: a person can be an investigator of one study and a monitor of
another, so the role lives on :class:`StudyMembership`, not on the user. What each role may do is
decided in one place, :mod:`alliance.web.accounts.access`. Failed log-ins are counted in
django-axes' table and second-factor devices are django-otp's (``throttle``, ``two_factor``).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A person who logs in: Django's standard user, kept in the ``accounts`` app."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class Role(models.TextChoices):
    """What a member may do in a study (see :mod:`alliance.web.accounts.access`)."""

    ADMIN = "admin", _("Administrator")
    INVESTIGATOR = "investigator", _("Investigator")
    FACILITATOR = "facilitator", _("Facilitator")
    MONITOR = "monitor", _("Monitor (read-only, de-identified)")


class StudyMembership(models.Model):
    """A user's role in one study. One role per user and study."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    study = models.ForeignKey("capture.Study", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "role", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "study"], name="accounts_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user.get_username()} is {self.role} of {self.study.name}"
