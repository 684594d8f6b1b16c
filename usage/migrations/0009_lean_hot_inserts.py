"""Less to write on every metered call.

- The reservation row (a queue of the calls in flight, inserted and deleted on
  every call) loses its foreign key, whose check locked the workspace row (a
  WAL record per call), and its indexes on the workspace and created_at.
- The moderation log (a row per screened call) keeps `reviewed_by` indexed
  for reviewed rows only. That index is built CONCURRENTLY, and the old one
  dropped the same way, so the hot path's inserts are never blocked while it
  builds (the migration is not atomic for that)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import config.clock

OLD_INDEX = "usage_moderationlog_reviewed_by_id_84c53911"
NEW_INDEX = "usage_modlog_reviewed_by"


def reviewed_by_partial(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # the meter runs on PostgreSQL only; elsewhere the full index stays
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NEW_INDEX} ON usage_moderationlog "
        "(reviewed_by_id) WHERE reviewed_by_id IS NOT NULL"
    )
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OLD_INDEX}")


def reviewed_by_full(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {OLD_INDEX} ON usage_moderationlog "
        "(reviewed_by_id)"
    )
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NEW_INDEX}")


class Migration(migrations.Migration):
    atomic = False  # CREATE/DROP INDEX CONCURRENTLY can't run in a transaction

    dependencies = [
        ("accounts", "0004_privacy_preferences_and_policy"),
        ("usage", "0008_usage_event_used_after"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="moderationlog",
                    name="reviewed_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AddIndex(
                    model_name="moderationlog",
                    index=models.Index(
                        condition=models.Q(("reviewed_by__isnull", False)),
                        fields=["reviewed_by"],
                        name=NEW_INDEX,
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(reviewed_by_partial, reviewed_by_full)],
        ),
        migrations.AlterField(
            model_name="reservation",
            name="created_at",
            field=models.DateTimeField(default=config.clock.now),
        ),
        migrations.AlterField(
            model_name="reservation",
            name="workspace",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.workspace",
            ),
        ),
    ]
