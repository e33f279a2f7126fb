"""What the loop benchmarks share.

Through the platform (``cycle_speed``): a private MedLoop (its own var folder, database and
file-system broker), a real Celery worker process on it, a project filled with synthetic
labelled cases through the real ingest path, and an annotator who submits each served case's
ground truth. Call :func:`prepare` before importing anything from Django (it sets the
environment).

In process (``label_efficiency``, which runs hundreds of training cycles and cannot afford a
database round trip per case): :func:`synthetic_pool` (cases with VinDr-like prevalence and
faint lesions, each with the boxes the simulated annotator of
:mod:`active_learning.ml.simulated_annotator` draws for it), :func:`tally_served` (kept / edited /
rejected suggestions at IoU 0.5) and :func:`strategy_scores` (the scores the real ranking reads
from a stored suggestion).
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

from medloop.metrics.boxes import iou as box_iou

REPO = Path(__file__).resolve().parents[1]
KEPT_IOU = 0.5  # a suggested box the annotator's box matches at this IoU (same finding) is kept
EDITED_IOU = 0.1  # below KEPT_IOU but at least this (or another finding): moved or relabelled


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


def record_bench_approval(project: Any) -> None:
    """A current ethics approval for a bench project where its settings require one (the
    production default): without it ingest, hand-out and training refuse."""
    if not project.requires_ethics_approval:
        return
    import datetime

    from annotations.services import ethics

    today = datetime.date.today()
    ethics.record_approval(
        project=project, committee="Bench committee", reference="BENCH-1",
        approved_on=today - datetime.timedelta(days=1),
        expires_on=today + datetime.timedelta(days=365), scope="Benchmark", actor=None,
    )  # fmt: skip


def make_project(name: str, *, pool: int, size: int, seed: int, settings: dict[str, Any]):
    """A project with ``pool`` synthetic cases (ingested as DICOM, clinical context imported)
    and the ground truth per case id."""
    from django.contrib.auth import get_user_model

    from active_learning.ml import synthetic
    from active_learning.services.loop_settings import update_loop_settings
    from annotations.models import IngestBatch
    from annotations.services import batches, clinical, projects
    from annotations.services.clinical_import import import_clinical_context

    user_model = get_user_model()
    annotator, _ = user_model.objects.get_or_create(username="simulated-annotator")
    project = projects.create_project(name=name, created_by=None, validation_fraction=0.0)
    record_bench_approval(project)
    if settings:  # the loop's settings live with the loop (LoopSettings), not on the project
        update_loop_settings(project=project, **settings)
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
    # Kept at IoU >= 0.5: VinDr-CXR's own readers reach IoU 0.9 on 1-6 % of nodule pairs (their
    # median best IoU is 0.48), so a stricter "kept" would call most agreement an edit.
    accepted: int = 0  # suggested box kept (IoU >= 0.5, same finding)
    edited: int = 0  # suggested box moved or relabelled (IoU >= 0.1)
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


def submit_truth(case, annotator, entry: dict, stats: Corrections) -> None:
    """Submit ``entry``'s ground truth for ``case`` as ``annotator``, first tallying how it
    differs from the serving version's suggestion for the case."""
    from active_learning.models import Suggestion
    from active_learning.services import case_inputs
    from annotations.services import annotate
    from medloop.metrics.text import word_edit_distance

    suggestion = Suggestion.objects.filter(case=case, model_version__status="promoted").first()
    true_boxes = [dict(b) for b in entry["boxes"]]
    stats.cases += 1
    if suggestion is not None:
        stats.with_suggestion += 1
        matched: set[int] = set()
        for box in suggestion.boxes:
            best, best_iou = None, 0.0
            for index, true in enumerate(true_boxes):
                overlap = box_iou(box, true)
                if index not in matched and overlap > best_iou:
                    best, best_iou = index, overlap
            same = best is not None and box["finding"] == true_boxes[best]["finding"]
            if best is not None and best_iou >= KEPT_IOU and same:
                stats.accepted += 1
                matched.add(best)
            elif best is not None and best_iou >= EDITED_IOU:
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


# ------------------------------------------------------------------------- in process
@dataclass
class PoolCase:
    """One synthetic case of an in-process pool: the model's view with the true boxes
    (``truth``) and with the simulated annotator's boxes (``annotated``), both
    :class:`~active_learning.ml.interface.LabelledCase`; ``contrast``: the faintest lesion's
    contrast factor (1.0 for a normal case)."""

    case_id: int
    truth: Any
    annotated: Any
    contrast: float


def synthetic_pool(
    *,
    seed: int,
    count: int,
    size: int,
    difficulty: float,
    annotator_seed: int,
    id_offset: int = 0,
    annotator_scale: float = 1.0,
) -> list[PoolCase]:
    """``count`` cases of synthetic set ``seed`` with VinDr-CXR prevalence and ``difficulty``,
    each paired with the simulated annotator's boxes (the annotator is seeded per case, so a
    case is annotated identically whichever strategy serves it and when). ``annotator_scale``
    scales the annotator's offsets (1.0: VinDr's readers; 0.0: the truth itself)."""
    from active_learning.ml.datasets import labelled_from_synthetic
    from active_learning.ml.simulated_annotator import SimulatedAnnotator, load_reader_variation
    from active_learning.ml.synthetic import generate_case

    variation = load_reader_variation()
    pool = []
    for index in range(count):
        case = generate_case(seed, index, size, prevalence="vindr", difficulty=difficulty)
        truth = labelled_from_synthetic(case, str(id_offset + index))
        annotator = SimulatedAnnotator(
            seed=annotator_seed * 1_000_003 + index, scale=annotator_scale, variation=variation
        )
        boxes = annotator.annotate(list(truth.boxes), rows=size, columns=size)
        annotated = replace_boxes(truth, boxes)
        contrast = min((c for c, _ in case.lesion_contrast.values()), default=1.0)
        pool.append(PoolCase(id_offset + index, truth, annotated, contrast))
    return pool


def replace_boxes(case: Any, boxes: list[Any]) -> Any:
    """A copy of the labelled ``case`` with ``boxes`` instead of its own."""
    from dataclasses import replace

    return replace(case, boxes=tuple(boxes))


@dataclass
class ServedTally:
    """How the annotator's boxes met the boxes shown on the cases served in one cycle."""

    cases: int = 0
    shown: int = 0
    kept: int = 0  # annotator box of the same finding at IoU >= KEPT_IOU
    edited: int = 0  # moved (IoU >= EDITED_IOU) or relabelled
    rejected: int = 0
    missed: int = 0  # annotator boxes no shown box matched
    lesion_cases: int = 0  # served cases with at least one annotator box
    lesion_cases_kept: int = 0  # ... of which at least one shown box was kept

    def row(self) -> dict[str, float | int | None]:
        shown = self.shown
        return {
            "served_cases": self.cases,
            "shown_boxes": shown,
            "kept_share": self.kept / shown if shown else None,
            "kept_or_edited_share": (self.kept + self.edited) / shown if shown else None,
            "lesion_cases_kept_share": (
                self.lesion_cases_kept / self.lesion_cases if self.lesion_cases else None
            ),
        }


def tally_served(tally: ServedTally, shown: list[Any], annotated: list[Any]) -> None:
    """Add one served case: ``shown`` (boxes with ``finding, x, y, width, height``, best score
    first) against the annotator's boxes ``annotated``; each annotator box matches one shown box
    at most."""
    tally.cases += 1
    tally.shown += len(shown)
    used: set[int] = set()
    kept_here = 0
    for box in shown:
        best, best_iou = None, 0.0
        for index, mine in enumerate(annotated):
            overlap = box_iou(_as_dict(box), _as_dict(mine))
            if index not in used and overlap > best_iou:
                best, best_iou = index, overlap
        if best is not None and best_iou >= KEPT_IOU and annotated[best].finding == box.finding:
            tally.kept += 1
            kept_here += 1
            used.add(best)
        elif best is not None and best_iou >= EDITED_IOU:
            tally.edited += 1
            used.add(best)
        else:
            tally.rejected += 1
    tally.missed += len(annotated) - len(used)
    if annotated:
        tally.lesion_cases += 1
        tally.lesion_cases_kept += kept_here > 0


def _as_dict(box: Any) -> dict[str, float]:
    return {k: float(getattr(box, k)) for k in ("x", "y", "width", "height")}


def strategy_scores(prediction: Any) -> dict[str, float]:
    """The scores a strategy reads for a case, as the real loop derives them from the stored
    suggestion (``active_learning.services.ranking.suggestion_scores``, read through Django
    when it can be set up here; otherwise the combined ``case_score`` alone)."""
    data = prediction.as_suggestion()
    row = {
        "uncertainty": data.get("uncertainty"),
        "acquisition_score": prediction.case_score,
        "boxes": data.get("boxes"),
    }
    scorer = _suggestion_scores()
    if scorer is None:
        return {"case_score": float(prediction.case_score)}
    return dict(scorer(row))


_scorer_cache: list[Any] = []


def _suggestion_scores() -> Any:
    """``ranking.suggestion_scores`` with Django configured for imports only (no database is
    touched), or None if that cannot be done in this process."""
    if not _scorer_cache:
        try:
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medloop.settings.local")
            os.environ.setdefault(
                "MEDLOOP_VAR_DIR", tempfile.mkdtemp(prefix="medloop-bench-reads-")
            )
            import django

            django.setup()
            from active_learning.services.ranking import suggestion_scores

            _scorer_cache.append(suggestion_scores)
        except Exception as exc:  # a bench without a configured platform still runs
            print(f"(scores from case_score only: {exc})", file=sys.stderr)
            _scorer_cache.append(None)
    return _scorer_cache[0]
