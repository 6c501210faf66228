"""``seed_demo STUDY``: demo accounts for each role on an imported study (demo data only)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from alliance.web.capture.demo import seed_demo
from alliance.web.capture.errors import UnknownStudyError


class Command(BaseCommand):
    help = ("Create demo accounts (demo-admin, demo-investigator, demo-facilitator, demo-facilitator2, "
            "demo-monitor; one documented password) on an imported study. For demos only.")

    def add_arguments(self, parser):
        parser.add_argument("study", help="The study's name, e.g. levin2024-demo.")

    def handle(self, *args, **options):
        try:
            accounts = seed_demo(options["study"])
        except UnknownStudyError as error:
            raise CommandError(str(error)) from None
        for username, account in accounts.items():
            facilitator = f" (facilitator {account['facilitator_id']})" if account["facilitator_id"] else ""
            self.stdout.write(f"{username}: {account['role']}{facilitator}, password {account['password']}")
