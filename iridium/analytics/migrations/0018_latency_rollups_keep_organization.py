"""The latency roll-ups are kept per organization as well: an organization's percentiles are
read from them, not from its share of the raw rows (a tenth of them, for a large one). The rows
already rolled up are sums over every organization (`by_organization` false); 0019 adds the rows
kept per organization. (Schema and data in two migrations: on PostgreSQL a migration that
deletes rows cannot change the table after, in the same transaction.)"""

import django.db.models.deletion
from django.db import migrations, models


def organization_field():
    return models.ForeignKey(
        blank=True,
        null=True,
        on_delete=django.db.models.deletion.SET_NULL,
        related_name="+",
        to="accounts.organization",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_audit_log"),
        ("analytics", "0017_latency_rollups_keep_plan"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="dailylatency", name="dailylatency_kept_plan"),
        migrations.RemoveIndex(model_name="hourlylatency", name="hourlylatency_kept_plan"),
        # The rows rolled up so far are sums over every organization.
        *(
            migrations.AddField(
                model_name=model_name,
                name="by_organization",
                field=models.BooleanField(
                    default=False, help_text="False: every organization summed."
                ),
            )
            for model_name in ("dailylatency", "hourlylatency")
        ),
        *(
            migrations.AlterField(
                model_name=model_name,
                name="by_organization",
                field=models.BooleanField(
                    default=True, help_text="False: every organization summed."
                ),
            )
            for model_name in ("dailylatency", "hourlylatency")
        ),
        *(
            migrations.AddField(
                model_name=model_name, name="organization", field=organization_field()
            )
            for model_name in ("dailylatency", "hourlylatency")
        ),
        migrations.AddIndex(
            model_name="dailylatency",
            index=models.Index(
                fields=["by_model", "by_feature", "by_variant", "by_plan", "by_organization",
                        "day"],
                name="dailylatency_kept_org",
            ),
        ),  # fmt: skip
        migrations.AddIndex(
            model_name="hourlylatency",
            index=models.Index(
                fields=["by_model", "by_feature", "by_variant", "by_plan", "by_organization",
                        "hour"],
                name="hourlylatency_kept_org",
            ),
        ),  # fmt: skip
    ]
