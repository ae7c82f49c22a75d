"""Load the demo data set. Idempotent: running it again changes nothing that exists.

Each app adds its part through a ``seed_demo`` function in ``<app>/demo.py``, called in
the order ``scoring.demo``, ``leads.demo``, ``nurturing.demo``; then a year of past leads
for predictive scoring. The command lives in nurturing, the one app that may import the
other two.
"""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from leadfunnel.roles import MARKETER, SALES
from leads import demo as leads_demo
from nurturing import demo as nurturing_demo
from scoring import demo as scoring_demo
from scoring.predictive.demo import seed_predictive_history

DEMO_USERS = (
    # username, group, superuser, first name, last name
    ("admin", None, True, "Ada", "Admin"),
    ("marketer", MARKETER, False, "Maya", "Marketer"),
    ("sales", SALES, False, "Sam", "Seller"),
    ("sales2", SALES, False, "Sasha", "Closer"),
)
SEED_APPS = (("scoring", scoring_demo), ("leads", leads_demo), ("nurturing", nurturing_demo))


class Command(BaseCommand):
    help = "Load LeadFunnel's demo data (users, rules, leads, sequences). Safe to run twice."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="Use this password for all new demo users instead of random ones.")
        parser.add_argument("--users-only", action="store_true", help="Create the demo users only.")

    def handle(self, *args, **options):
        created = self.seed_users(options.get("password"))
        if not options["users_only"]:
            for app_label, module in SEED_APPS:
                summary = module.seed_demo()
                if summary:
                    self.stdout.write(f"{app_label}: {summary}")
            # Predictive scoring and back-tests need outcomes: a year of past leads, then the first model.
            self.stdout.write(f"predictive: {seed_predictive_history()}")
        if created:
            self.stdout.write(self.style.SUCCESS("Demo logins (shown once, keep them):"))
            for username, password in created:
                self.stdout.write(f"  {username:<9} {password}")
        else:
            self.stdout.write("Demo users already exist; their passwords were printed when they were created.")

    @transaction.atomic
    def seed_users(self, password: str | None) -> list[tuple[str, str]]:
        user_model = get_user_model()
        created = []
        for username, group_name, superuser, first, last in DEMO_USERS:
            if user_model.objects.filter(username=username).exists():
                continue
            user_password = password or secrets.token_urlsafe(9)
            user = user_model.objects.create_user(
                username=username,
                email=f"{username}@leadfunnel.example",
                password=user_password,
                first_name=first,
                last_name=last,
                is_superuser=superuser,
                is_staff=superuser,
            )
            if group_name:
                user.groups.add(Group.objects.get(name=group_name))
            created.append((username, user_password))
        return created
