"""3D lesion boxes (issue 21, part 3): a box's series, its slice range and its patient
coordinates (mm); all empty on a 2D box."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0017_project_loop_settings_moved_to_the_loop"),
    ]

    operations = [
        migrations.AddField(
            model_name="box",
            name="patient_mm",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="box",
            name="series",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="boxes",
                to="annotations.series",
            ),
        ),
        migrations.AddField(
            model_name="box",
            name="slice_first",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="box",
            name="slice_last",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="box",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("series__isnull", True),
                        ("slice_first__isnull", True),
                        ("slice_last__isnull", True),
                    ),
                    models.Q(
                        ("series__isnull", False),
                        ("slice_first__gte", 1),
                        ("slice_last__gte", models.F("slice_first")),
                    ),
                    _connector="OR",
                ),
                name="box_slice_range_in_order",
            ),
        ),
    ]
