"""What the loop benchmarks share: a private MedLoop (its own var folder, database and
file-system broker), a real Celery worker process on it, a project filled with synthetic
labelled cases through the real ingest path, and a simulated annotator who corrects each
served case's suggestion to the ground truth.

Call :func:`prepare` before importing anything from Django (it sets the environment).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def prepare(database_url: str | None = None, threads: int = 2) -> Path:
    """A private var folder and the environment for this process and its worker; Django set
    up and migrated. ``database_url``: PostgreSQL (a database created for the run) or None for
    SQLite in the var folder."""
    sys.path.insert(0, str(REPO))
    var = Path(tempfile.mkdtemp(prefix="medloop-bench-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="medloop.settings.local",
        DJANGO_DEBUG="false",
        MEDLOOP_VAR_DIR=str(var),
        CELERY_BROKER_URL="filesystem://",
        DATABASE_URL=database_url or f"sqlite:///{var / 'bench.sqlite3'}",
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return var


def start_worker(var: Path, log_name: str = "worker.log") -> subprocess.Popen[bytes]:
    """A real Celery worker on the training, inference and default queues."""
    log = var / log_name
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "medloop",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "1",
            "--pool",
            "prefork",
            "--without-mingle",
            "--without-gossip",
            "--queues",
            "default,training,inference",
        ],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while b"ready." not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the Celery worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    return process


def make_project(name: str, *, pool: int, size: int, seed: int, settings: dict[str, Any]):
    """A project with ``pool`` synthetic cases (ingested as DICOM, clinical context imported)
    and the ground truth per case id."""
    from django.contrib.auth import get_user_model

    from active_learning.ml import synthetic
    from annotations.models import IngestBatch
    from annotations.services import batches, clinical, projects
    from annotations.services.clinical_import import import_clinical_context

    user_model = get_user_model()
    annotator, _ = user_model.objects.get_or_create(username="simulated-annotator")
    project = projects.create_project(
        name=name, created_by=None, validation_fraction=0.0, **settings
    )
    projects.add_member(project=project, user=annotator, role="annotator", added_by=None)
    with tempfile.TemporaryDirectory(prefix="medloop-pool-") as tmp:
        cases = synthetic.generate_dataset(seed=seed, count=pool, out_dir=Path(tmp), size=size)
        batches.ingest_sources(
            project=project,
            sources=(s for p in sorted(Path(tmp).glob("*.dcm")) for s in batches.path_sources(p)),
            source=IngestBatch.Source.COMMAND,
        )
        context = [
            {
                "accession_number": c.accession_number,
                "indication": c.indication,
                "history": c.history,
                "labs": c.labs,
            }
            for c in cases
        ]
        import_clinical_context(
            project=project, data=json.dumps(context).encode(), file_name="context.json"
        )
        manifest = {m["accession_number"]: m for m in synthetic.load_manifest(tmp)}
    truth = {}
    for accession, entry in manifest.items():
        case = clinical.case_for_accession(project=project, accession_number=accession)
        truth[case.pk] = entry
    return project, annotator, truth


@dataclass
class Corrections:
    """How the simulated annotator changed the served suggestions (per cycle)."""

    cases: int = 0
    with_suggestion: int = 0
    accepted: int = 0  # suggested box kept as it was (IoU >= 0.9, same finding)
    edited: int = 0  # suggested box moved or relabelled (IoU >= 0.3)
    rejected: int = 0  # suggested box removed
    added: int = 0  # true box the model missed
    report_edit_distance: list[float] = field(default_factory=list)

    def row(self) -> dict[str, float]:
        boxes = max(self.accepted + self.edited + self.rejected, 1)
        distances = self.report_edit_distance
        return {
            "cases": self.cases,
            "with_suggestion": self.with_suggestion,
            "accepted_share": self.accepted / boxes,
            "edited_share": self.edited / boxes,
            "rejected_share": self.rejected / boxes,
            "added_boxes": self.added,
            "report_edit_distance": sum(distances) / len(distances) if distances else float("nan"),
        }


def _iou(a: dict[str, float], b: dict[str, float]) -> float:
    x1, y1 = max(a["x"], b["x"]), max(a["y"], b["y"])
    x2 = min(a["x"] + a["width"], b["x"] + b["width"])
    y2 = min(a["y"] + a["height"], b["y"] + b["height"])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union > 0 else 0.0


def word_edit_distance(draft: str, final: str) -> float:
    """Word-level Levenshtein distance from the draft to the final text, over the final
    text's length (0: unchanged; 1: rewritten): the measure the Models page charts per
    version (``active_learning.services.model_dashboard``)."""
    from active_learning.services.model_dashboard import word_edit_distance as distance

    return distance(draft, final)


def submit_truth(case, annotator, entry: dict, stats: Corrections) -> None:
    """Submit ``entry``'s ground truth for ``case`` as ``annotator``, first tallying how it
    differs from the serving version's suggestion for the case."""
    from active_learning.models import Suggestion
    from active_learning.services import case_inputs
    from annotations.services import annotate

    suggestion = Suggestion.objects.filter(case=case, model_version__status="promoted").first()
    true_boxes = [dict(b) for b in entry["boxes"]]
    stats.cases += 1
    if suggestion is not None:
        stats.with_suggestion += 1
        matched: set[int] = set()
        for box in suggestion.boxes:
            best, best_iou = None, 0.0
            for index, true in enumerate(true_boxes):
                overlap = _iou(box, true)
                if index not in matched and overlap > best_iou:
                    best, best_iou = index, overlap
            same = best is not None and box["finding"] == true_boxes[best]["finding"]
            if best is not None and best_iou >= 0.9 and same:
                stats.accepted += 1
                matched.add(best)
            elif best is not None and best_iou >= 0.3:
                stats.edited += 1
                matched.add(best)
            else:
                stats.rejected += 1
        stats.added += len(true_boxes) - len(matched)
        draft = " ".join(suggestion.report_draft.get(k, "") for k in ("findings", "impression"))
        final = " ".join(entry["report"].get(k, "") for k in ("findings", "impression"))
        stats.report_edit_distance.append(word_edit_distance(draft, final))
    annotation = annotate.start_annotation(case=case, annotator=annotator)
    instance = case_inputs.first_instance(case)
    annotate.submit(
        annotation=annotation,
        actor=annotator,
        expected_version=annotation.version,
        findings={k: "present" if v else "absent" for k, v in entry["findings"].items()},
        report=entry["report"],
        boxes=[
            annotate.BoxInput(
                instance_id=instance.pk,
                x=b["x"],
                y=b["y"],
                width=b["width"],
                height=b["height"],
                finding=b["finding"],
            )
            for b in true_boxes
        ],
    )


def label_cases(project, annotator, truth: dict[int, dict], count: int, stats: Corrections):
    """The annotator takes ``count`` cases from the queue (highest priority first) and submits
    each with its ground truth; returns the case ids served."""
    from annotations.services import queue

    served = []
    for _ in range(count):
        case = queue.lease_next_case(project=project, annotator=annotator)
        if case is None:
            break
        submit_truth(case, annotator, truth[case.pk], stats)
        served.append(case.pk)
    return served


def label_given(project, annotator, truth: dict[int, dict], case_ids: list[int]) -> None:
    """Submit the ground truth of exactly ``case_ids`` (a validation set, labels given up
    front), whatever the queue's order."""
    from annotations.models import Case

    for case in Case.objects.filter(project=project, pk__in=case_ids):
        submit_truth(case, annotator, truth[case.pk], Corrections())


def run_cycle(project, timeout: float = 3600):
    """Trigger a cycle as a model owner would and wait for the worker to finish it."""
    from active_learning.models import RetrainingCycle
    from active_learning.services import cycles

    cycle = cycles.trigger_cycle(project=project)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cycle.refresh_from_db()
        if cycle.status not in (RetrainingCycle.Status.QUEUED, RetrainingCycle.Status.RUNNING):
            if cycle.status != RetrainingCycle.Status.SUCCEEDED:
                raise RuntimeError(f"cycle {cycle.pk} {cycle.status}: {cycle.error}")
            return cycle
        time.sleep(0.5)
    raise RuntimeError(f"cycle {cycle.pk} did not finish in {timeout:.0f} s")
