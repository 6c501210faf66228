"""Log in, log out, users and roles (owned by the accounts app)."""

from __future__ import annotations

app_name = "accounts"
urlpatterns: list = []
