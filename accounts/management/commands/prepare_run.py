"""The run command's set-up in ONE Django start: migrate only when migrations
are unapplied, then the (idempotent) demo data. A plain restart does no
migration work at all."""

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def unapplied_migrations() -> list:
    executor = MigrationExecutor(connection)
    return executor.migration_plan(executor.loader.graph.leaf_nodes())


class Command(BaseCommand):
    help = "Migrate if needed, then seed the demo data (used by bin/run)."

    def handle(self, *args, **options) -> None:
        pending = unapplied_migrations()
        if pending:
            self.stdout.write(f"==> applying {len(pending)} migration(s)")
            call_command("migrate", "--noinput", verbosity=0)
        call_command("seed_demo")
