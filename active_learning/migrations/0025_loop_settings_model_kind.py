"""LoopSettings.model_kind: the model kind a project's cycles train; empty picks it by the
project's modality (a CT project trains the 3D CT detector)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("active_learning", "0012_version_comparisons"),
    ]

    operations = [
        migrations.AddField(
            model_name="loopsettings",
            name="model_kind",
            field=models.CharField(
                blank=True,
                default="",
                help_text=(
                    "Model kind a cycle trains; empty: by the project's modality (CT: 3D detector)."
                ),
                max_length=40,
            ),
        ),
    ]
