"""The loop's settings left Project for active_learning.LoopSettings (issue 19); the loop's
migration 0016 carried every project's values over before these columns go."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0015_data_protection_officer_role"),
        ("active_learning", "0016_loop_settings_from_project"),
    ]

    operations = [
        migrations.RemoveField(model_name="project", name="acquisition_strategy"),
        migrations.RemoveField(model_name="project", name="auto_retrain_threshold"),
        migrations.RemoveField(model_name="project", name="auto_promote"),
        migrations.RemoveField(model_name="project", name="promotion_metric"),
        migrations.RemoveField(model_name="project", name="training_epochs"),
        migrations.RemoveField(model_name="project", name="model_config"),
    ]
