"""The loop's settings move off annotations.Project into LoopSettings (issue 19): the fields are
added here and every project's values carried over into its row (created where missing);
annotations 0017 then drops them from Project."""

from django.db import migrations, models

FIELDS = (
    "acquisition_strategy",
    "auto_retrain_threshold",
    "auto_promote",
    "promotion_metric",
    "training_epochs",
    "model_config",
)


def carry_over(apps, schema_editor):
    Project = apps.get_model("annotations", "Project")
    LoopSettings = apps.get_model("active_learning", "LoopSettings")
    for project in Project.objects.all():
        values = {name: getattr(project, name) for name in FIELDS}
        LoopSettings.objects.update_or_create(project=project, defaults=values)


def carry_back(apps, schema_editor):
    Project = apps.get_model("annotations", "Project")
    LoopSettings = apps.get_model("active_learning", "LoopSettings")
    for row in LoopSettings.objects.all():
        Project.objects.filter(pk=row.project_id).update(
            **{name: getattr(row, name) for name in FIELDS}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("active_learning", "0011_validation_reports"),
        ("annotations", "0014_patient_consent_and_withdrawal"),
    ]

    operations = [
        migrations.AddField(
            model_name="loopsettings",
            name="acquisition_strategy",
            field=models.CharField(
                default="hybrid",
                help_text="How the loop orders the queue (active_learning.strategies).",
                max_length=40,
            ),
        ),
        migrations.AddField(
            model_name="loopsettings",
            name="auto_retrain_threshold",
            field=models.PositiveIntegerField(
                default=50,
                help_text="Newly submitted annotations that trigger a retraining cycle (0: off).",
            ),
        ),
        migrations.AddField(
            model_name="loopsettings",
            name="auto_promote",
            field=models.BooleanField(
                default=True,
                help_text="Promote a new version when its validation metric improves on the "
                "serving one.",
            ),
        ),
        migrations.AddField(
            model_name="loopsettings",
            name="promotion_metric",
            field=models.CharField(default="combined", max_length=40),
        ),
        migrations.AddField(
            model_name="loopsettings",
            name="training_epochs",
            field=models.PositiveSmallIntegerField(default=5),
        ),
        migrations.AddField(
            model_name="loopsettings",
            name="model_config",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(carry_over, carry_back),
    ]
