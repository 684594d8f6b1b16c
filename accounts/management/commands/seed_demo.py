"""Demo data for the run command. Each app may add its own in `<app>/demo.py`
(a `seed() -> list[str]` returning lines to print); this command calls them in
dependency order. Safe to run again: it never duplicates."""

import importlib
import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User

OPERATOR_EMAIL = "operator@tollgate.local"
DEMO_WORKSPACE_NAME = "Demo workspace"
APPS_IN_ORDER = ["usage", "billing", "ai_features"]
RESET_HINT = f"While bin/run runs, set a new one: bin/manage changepassword {OPERATOR_EMAIL}"


class Command(BaseCommand):
    help = "Create the operator login and demo data (idempotent)."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            lines = [self._operator()]
            for app in APPS_IN_ORDER:
                try:
                    module = importlib.import_module(f"{app}.demo")
                except ModuleNotFoundError:
                    continue
                lines.extend(module.seed())
        for line in lines:
            self.stdout.write(line)

    def _operator(self) -> str:
        existing = User.objects.filter(email=OPERATOR_EMAIL).first()
        if existing is not None:
            self._demo_workspace(existing)
            return (
                f"Operator login {OPERATOR_EMAIL} exists (its password was printed once, "
                f"when it was made). Forgot it? {RESET_HINT}"
            )
        password = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(OPERATOR_EMAIL, password)
        from allauth.account.models import EmailAddress

        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        self._demo_workspace(user)
        return (
            f"\n  Operator login (shown once): {OPERATOR_EMAIL} / {password}\n"
            f"  Admin: /admin/\n  Lost the password? {RESET_HINT}\n"
        )

    def _demo_workspace(self, user: User) -> None:
        """The operator can try the product pages at once, in their own workspace."""
        from accounts.services import workspace_create

        if not user.memberships.exists():
            workspace_create(name=DEMO_WORKSPACE_NAME, owner=user)
