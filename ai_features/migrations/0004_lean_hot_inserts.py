"""The summary's request id keeps its unique index but loses the LIKE-pattern
twin that `unique=True` on a CharField adds (one index less to write on every
summarize call). The unique constraint is renamed in place, not rebuilt: no
lock held while a new index builds on a big table."""

from django.db import migrations, models

TABLE = "ai_features_summary"
LIKE_INDEX = "ai_features_summary_request_id_b023774e_like"
NEW_NAME = "summary_request_id_uniq"
OLD_NAME = "ai_features_summary_request_id_key"  # PostgreSQL's name from CREATE TABLE


def _unique_on_request_id(schema_editor) -> str | None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u' "
            "AND conkey = (SELECT array_agg(attnum) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attname = 'request_id')",
            [TABLE, TABLE],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def to_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # the meter runs on PostgreSQL only; elsewhere both indexes stay
    schema_editor.execute(f"DROP INDEX IF EXISTS {LIKE_INDEX}")
    current = _unique_on_request_id(schema_editor)
    if current is None:
        schema_editor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {NEW_NAME} UNIQUE (request_id)")
    elif current != NEW_NAME:
        schema_editor.execute(f'ALTER TABLE {TABLE} RENAME CONSTRAINT "{current}" TO {NEW_NAME}')


def to_unique_field(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE {TABLE} RENAME CONSTRAINT {NEW_NAME} TO {OLD_NAME}")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {LIKE_INDEX} ON {TABLE} (request_id varchar_pattern_ops)"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_privacy_preferences_and_policy"),
        ("ai_features", "0003_clock_defaults"),
        ("usage", "0008_usage_event_used_after"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="summary",
                    name="request_id",
                    field=models.CharField(max_length=64),
                ),
                migrations.AddConstraint(
                    model_name="summary",
                    constraint=models.UniqueConstraint(fields=("request_id",), name=NEW_NAME),
                ),
            ],
            database_operations=[migrations.RunPython(to_constraint, to_unique_field)],
        ),
    ]
