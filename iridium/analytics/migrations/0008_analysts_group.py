"""The "Analysts" group: the console's figures, traces and export, not the AI content."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Analysts"
PERMISSIONS = ["view_console"]


def create_group(apps, schema_editor):
    # Permissions are made after migrations run; make the analytics ones now to use them here.
    config = apps.get_app_config("analytics")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="analytics", codename__in=PERMISSIONS)
    )


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0007_console_permissions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
