from django.db import migrations

from iridium.accounts.defaults import DEFAULT_PLANS

def create_plans(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    for fields in DEFAULT_PLANS:
        Plan.objects.update_or_create(slug=fields["slug"], defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_plans, migrations.RunPython.noop)]
