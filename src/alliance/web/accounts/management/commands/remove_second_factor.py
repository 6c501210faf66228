"""``django-admin remove_second_factor USERNAME``: remove a user's authenticator app (a lost phone).

The user then logs in with their password alone and, if a second factor is required of them
(``ALLIANCE_REQUIRE_2FA``), is sent to enrol a new one. Audited as the deletion of each device,
by ``cli:remove_second_factor``.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance.web.audit.log import AuditLog


class Command(BaseCommand):
    help = "Remove the authenticator apps (TOTP devices) of one user, e.g. after a lost phone."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"there is no account named {username!r}")
        devices = list(TOTPDevice.objects.devices_for_user(user))
        with transaction.atomic():
            log = AuditLog(actor="cli:remove_second_factor")
            for device in devices:
                log.deleted(device, {"name": device.name, "confirmed": device.confirmed},
                            label=f"{username}: {device.name}")
                device.delete()
            log.write()
        self.stdout.write(f"removed {len(devices)} authenticator app(s) of {username!r}")
