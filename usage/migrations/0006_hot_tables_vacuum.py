"""The meter's hot rows are updated on every call (the counters twice, the
rollup once; a reservation row is written and deleted): tell autovacuum to
clean them after a few hundred dead versions instead of a fraction of the
table (20% of 10 rows is nothing, so the default waits for its naptime while
lock-holding updates walk ever longer chains), and leave room on each page
for HOT updates."""

from django.db import migrations

HOT_TABLES = {
    "usage_usagecounter": "fillfactor = 50, autovacuum_vacuum_scale_factor = 0, "
    "autovacuum_vacuum_threshold = 500",
    "usage_usagerollup": "fillfactor = 70, autovacuum_vacuum_scale_factor = 0, "
    "autovacuum_vacuum_threshold = 1000",
    "usage_reservation": "autovacuum_vacuum_scale_factor = 0, "
    "autovacuum_vacuum_threshold = 1000",
}
OPTIONS = ("fillfactor", "autovacuum_vacuum_scale_factor", "autovacuum_vacuum_threshold")


def tune(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, options in HOT_TABLES.items():
        schema_editor.execute(f"ALTER TABLE {table} SET ({options})")


def untune(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in HOT_TABLES:
        schema_editor.execute(f"ALTER TABLE {table} RESET ({', '.join(OPTIONS)})")


class Migration(migrations.Migration):
    dependencies = [("usage", "0005_merge_lead")]
    operations = [migrations.RunPython(tune, untune)]
