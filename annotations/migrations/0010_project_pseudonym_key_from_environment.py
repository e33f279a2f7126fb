"""Project pseudonym keys leave the database: new projects get a random salt and their key is
derived from MEDLOOP_PSEUDONYM_KEY (annotations.pseudonym_keys). Existing projects keep their
stored secret, renamed ``legacy_pseudonym_secret``, so the pseudonyms, UID maps and date shifts
already made stay the same; each also gets its own salt. New rows store no secret."""

from django.db import migrations, models

import annotations.pseudonym_keys


def give_each_project_a_salt(apps, schema_editor):
    # One salt per row: AddField's default is computed once for every existing row.
    Project = apps.get_model("annotations", "Project")
    for project in Project.objects.filter(pseudonym_salt=""):
        project.pseudonym_salt = annotations.pseudonym_keys.new_salt()
        project.save(update_fields=["pseudonym_salt"])


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0009_project_calling_ae_title_allow_list"),
    ]

    operations = [
        migrations.RenameField(
            model_name="project",
            old_name="pseudonym_secret",
            new_name="legacy_pseudonym_secret",
        ),
        migrations.AlterField(
            model_name="project",
            name="legacy_pseudonym_secret",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="project",
            name="pseudonym_salt",
            field=models.CharField(default="", editable=False, max_length=64),
        ),
        migrations.RunPython(give_each_project_a_salt, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="project",
            name="pseudonym_salt",
            field=models.CharField(
                default=annotations.pseudonym_keys.new_salt, editable=False, max_length=64
            ),
        ),
    ]
