"""Issue 19: the loop's settings left ``annotations.Project`` for ``LoopSettings``. Migrating
carries every project's values over (a row for each project), and migrating back puts them
on the project again. Run on a fresh SQLite database in a subprocess, as a deployment would."""

from __future__ import annotations

from tests.support.sqlite_script import run_on_sqlite

SCRIPT = r"""
import json
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("annotations", "0014_patient_consent_and_withdrawal"),
          ("active_learning", "0011_validation_reports")]
FIELDS = ("acquisition_strategy", "auto_retrain_threshold", "auto_promote", "promotion_metric",
          "training_epochs", "model_config")
call_command("migrate", "active_learning", BEFORE[1][1], verbosity=0)
call_command("migrate", "annotations", BEFORE[0][1], verbosity=0)
old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
Project = old.get_model("annotations", "Project")
Project.objects.create(name="plain", pseudonym_salt="a" * 32)
Project.objects.create(
    name="tuned", pseudonym_salt="b" * 32, acquisition_strategy="fifo",
    auto_retrain_threshold=7, auto_promote=False, promotion_metric="boxes.map_50",
    training_epochs=3, model_config={"train_steps": 40},
)
call_command("migrate", verbosity=0)
from active_learning.models import LoopSettings
forward = {row.project.name: {f: getattr(row, f) for f in FIELDS}
           for row in LoopSettings.objects.select_related("project")}
call_command("migrate", "active_learning", BEFORE[1][1], verbosity=0)
old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
back = {p.name: {f: getattr(p, f) for f in FIELDS}
        for p in old.get_model("annotations", "Project").objects.all()}
print(json.dumps({"forward": forward, "back": back}))
"""


def test_the_loop_settings_move_to_the_loop_with_every_projects_values(tmp_path):
    found = run_on_sqlite(SCRIPT, tmp_path)
    tuned = {
        "acquisition_strategy": "fifo",
        "auto_retrain_threshold": 7,
        "auto_promote": False,
        "promotion_metric": "boxes.map_50",
        "training_epochs": 3,
        "model_config": {"train_steps": 40},
    }
    plain = {
        "acquisition_strategy": "hybrid",
        "auto_retrain_threshold": 50,
        "auto_promote": True,
        "promotion_metric": "combined",
        "training_epochs": 5,
        "model_config": {},
    }
    assert found["forward"] == {"tuned": tuned, "plain": plain}
    assert found["back"] == {"tuned": tuned, "plain": plain}
