"""The operator's read-only "Finance" group (DESIGN.md "Finance staff: two
kinds"): view permissions on billing and accounts models, nothing else. Staff
users put in it get the finance console at /backoffice/finance/."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Finance"
READ_APPS = ("billing", "accounts")


def create_group(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    views = Permission.objects.filter(
        content_type__app_label__in=READ_APPS, codename__startswith="view_"
    )
    group.permissions.set(views)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_export_jobs"),
        ("billing", "0003_invoice_mirror"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
