"""The "Support agents" group: staff in it handle tickets (support.access.is_agent) and write
knowledge-base articles in admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

AGENTS_GROUP = "Support agents"
PERMISSIONS = [  # support.access.AGENT_PERMISSIONS
    "add_article", "change_article", "view_article", "change_ticket", "view_ticket",
]  # fmt: skip


def create_group(apps, schema_editor):
    # Permissions are made after migrations; make support's now, so the group can have them.
    support = apps.get_app_config("support")
    support.models_module = True
    create_permissions(support, apps=apps, verbosity=0)
    support.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=AGENTS_GROUP)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="support", codename__in=PERMISSIONS)
    )


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=AGENTS_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0004_ticket_notes"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
