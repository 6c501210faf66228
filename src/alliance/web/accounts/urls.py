"""Log in, log out, the second factor, users and roles, an invited member's set-password page (owned by the accounts app). Listed in /tmp/web_urls_W1.md."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("two-factor/", views.two_factor_setup, name="two_factor"),
    path("two-factor/verify/", views.two_factor_verify, name="two_factor_verify"),
    path("studies/<str:study>/members/", views.members, name="members"),
    # An invited member's one-time link (accounts.invitations); its token never reaches a log line.
    path("welcome/<uidb64>/<token>/", views.SetPasswordView.as_view(), name="set_password"),
]
