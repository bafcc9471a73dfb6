from django.db import migrations

from iridium.accounts.defaults import DEFAULT_PLANS

def create_plans(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    # Only the fields the plan has at this point of its history (later migrations add more).
    known = {field.name for field in Plan._meta.get_fields()}
    for fields in DEFAULT_PLANS:
        defaults = {name: value for name, value in fields.items() if name in known}
        Plan.objects.update_or_create(slug=fields["slug"], defaults=defaults)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_plans, migrations.RunPython.noop)]
