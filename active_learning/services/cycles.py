"""Retraining cycles: the loop's orchestration, in one place.

A cycle runs as a chain of Celery tasks, each taking the cycle's id and nothing else:

1. ``train_cycle`` (``training`` queue): freeze the label snapshot -> train (warm start from the
   latest trained version or the promoted one, ``LoopSettings.warm_start``; the parent and why
   are recorded on the new version) -> evaluate candidate and promoted version on the project's
   fixed validation cases -> register a :class:`ModelVersion` -> promote it when the promotion
   guard passes (enough validation labels, a gain beyond noise by paired bootstrap:
   :mod:`active_learning.services.promotion`), else leave it for a model owner -> split the
   open cases into scoring chunks.
2. ``score_chunk`` (``inference`` queue), one per chunk, on any number of workers: store the
   serving version's suggestions, scores and embeddings; the task that completes the last chunk
   queues the ranking.
3. ``rank_cycle``: the project's acquisition strategy rewrites the queue's priorities; the cycle
   succeeds.

Everything a task needs is in the database, so a task is idempotent (a stage already done is
skipped, a version is registered once) and a cycle survives restarts of web server and workers.
Two safeguards against running twice: the database allows one active cycle per project, and the
training stage is *claimed* by one delivery (host, pid, task id, heartbeat): a second delivery of
the same message (the Redis broker redelivers a task that outlives its visibility timeout) sees a
live claim and stops; a delivery whose claimant died (SIGKILL) takes over
(:mod:`active_learning.services.cycle_claims`). ``resume_stalled`` (run by beat) re-queues the
stage of a cycle whose claimant has stopped sending heartbeats. Every next stage is queued one
way, by name once the transaction commits (``medloop.celery.send_after_commit``): a broker that
is away is logged, and the stalled cycle is resumed by beat.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from active_learning.ml import kinds
from active_learning.ml.checkpoints import read_manifest
from active_learning.ml.interface import CheckpointError, SuggestionModel
from active_learning.models import LoopSettings, ModelVersion, RetrainingCycle, Suggestion
from active_learning.services import pretraining, promotion, versions
from active_learning.services.case_inputs import labelled_source, reads_volumes
from active_learning.services.cycle_claims import (
    ACTIVE,
    BANDS,
    LOG_LINES,
    CycleStopped,
    claim,
    fail,
    log_line,
    record_progress,
    stage,
)
from active_learning.services.loop_settings import loop_settings, model_kind
from active_learning.services.metric_schema import metric_value
from active_learning.services.withdrawals import training_annotations
from annotations.models import Case, Consent, Project
from annotations.services import audit, ethics
from annotations.services.errors import Conflict
from medloop.celery import send_after_commit

logger = logging.getLogger(__name__)

Status = RetrainingCycle.Status


class CycleAlreadyActive(Conflict):
    """A project runs one cycle at a time; ``cycle`` is the one running."""

    def __init__(self, cycle: RetrainingCycle | None) -> None:
        which = ""
        if cycle is not None:
            which = f" (cycle {cycle.pk}, {cycle.status}, stage {cycle.stage or 'queued'})"
        super().__init__(
            "A retraining cycle is already running for this project" + which,
            active_cycle=cycle.pk if cycle else None,
        )


# --- starting, cancelling ---------------------------------------------------------------------


def trigger_cycle(
    *,
    project: Project,
    triggered_by: User | None = None,
    trigger: str = RetrainingCycle.Trigger.MANUAL,
) -> RetrainingCycle:
    """Queue a retraining cycle for ``project``. The database refuses a second active cycle
    (:class:`CycleAlreadyActive`, 409), and so does a project without a current ethics
    approval (EthicsApprovalRequired, 403). The first task is queued only once the cycle row is
    committed."""
    ethics.require_current_approval(project=project, actor=triggered_by, activity="training")
    try:
        with transaction.atomic():
            cycle = RetrainingCycle.objects.create(
                project=project,
                trigger=trigger,
                triggered_by=triggered_by,
                strategy=loop_settings(project).acquisition_strategy,
                stage="queued",
                log=[log_line(f"queued ({trigger})")],
            )
    except IntegrityError:
        raise CycleAlreadyActive(active_cycle(project)) from None
    audit.record(
        action="cycle.trigger",
        actor=triggered_by,
        target=cycle,
        project_id=project.pk,
        detail={"trigger": trigger, "strategy": cycle.strategy},
    )
    # Sent after commit; with the broker down the cycle waits, queued, for beat to send it.
    send_after_commit("active_learning.train_cycle", cycle.pk)
    return cycle


def active_cycle(project: Project) -> RetrainingCycle | None:
    return RetrainingCycle.objects.filter(project=project, status__in=ACTIVE).first()


def labels_since_last_cycle(project: Project) -> int:
    """Training labels submitted since the project's last cycle started (cancelled cycles do
    not count as a start: their labels are still new)."""
    last = (
        RetrainingCycle.objects.filter(project=project)
        .exclude(status=Status.CANCELLED)
        .order_by("-created_at")
        .first()
    )
    labels = training_annotations(project)
    if last is not None:
        labels = labels.filter(submitted_at__gt=last.created_at)
    return labels.count()


def maybe_trigger_automatic(project: Project) -> RetrainingCycle | None:
    """Start a cycle when the newly submitted labels reach the project's threshold (0: never)."""
    threshold = loop_settings(project).auto_retrain_threshold
    if threshold == 0 or active_cycle(project) is not None:
        return None
    if ethics.status_of(project).read_only:  # no training without a current ethics approval
        return None
    if labels_since_last_cycle(project) < threshold:
        return None
    try:
        return trigger_cycle(project=project, trigger=RetrainingCycle.Trigger.AUTOMATIC)
    except CycleAlreadyActive:
        return None


def cancel_cycle(*, cycle: RetrainingCycle, cancelled_by: User | None) -> RetrainingCycle:
    """Stop an active cycle. Its tasks notice at their next heartbeat and stop; a version not
    yet registered is discarded, one registered but not promoted stays a candidate."""
    with transaction.atomic():
        locked = RetrainingCycle.objects.select_for_update().get(pk=cycle.pk)
        if locked.status not in ACTIVE:
            raise Conflict(f"Cycle {cycle.pk} is {locked.status}; only an active one can stop.")
        locked.status = Status.CANCELLED
        locked.finished_at = timezone.now()
        locked.log = [*locked.log, log_line("cancelled")][-LOG_LINES:]
        locked.save(update_fields=["status", "finished_at", "log"])
    audit.record(
        action="cycle.cancel", actor=cancelled_by, target=locked, project_id=cycle.project_id
    )
    return locked


# --- stage 1: train, evaluate, register, promote ----------------------------------------------


def run_training(cycle_id: int, *, owner: str) -> bool:
    """Stage 1 of the cycle (see the module docstring). Returns True when it queued scoring;
    False when this delivery had nothing to do (cycle finished, or held by a live delivery)."""
    cycle = claim(cycle_id, owner)
    if cycle is None:
        return False
    if cycle.model_version_id is not None:  # registered by an earlier delivery
        _queue_scoring(cycle, owner)
        return True
    project = cycle.project
    try:  # the approval may have lapsed while the cycle waited in the queue
        ethics.require_current_approval(
            project=project, actor=cycle.triggered_by, activity="training"
        )
    except ethics.EthicsApprovalRequired as exc:
        fail(cycle.pk, exc.message)
        return False
    if not cycle.label_snapshot:
        snapshot = [list(p) for p in training_annotations(project).values_list("pk", "version")]
        if not snapshot:
            fail(cycle.pk, "the project has no submitted or accepted labels to learn from")
            return False
        cycle.label_snapshot = snapshot
        RetrainingCycle.objects.filter(pk=cycle.pk).update(label_snapshot=snapshot)
        record_progress(
            cycle, log=f"label snapshot frozen: {len(snapshot)} annotations", owner=owner
        )
    ids = [pk for pk, _ in cycle.label_snapshot]
    serving = versions.promoted_version(project)
    loop = loop_settings(project)
    start = _warm_start(cycle, serving, project, loop, owner)
    warm = start.version.weights_path if start.version is not None else None
    # A cycle goes on with the kind of the version it builds on (a warm start loads that
    # kind's weights) unless the project names another kind (LoopSettings.model_kind); from
    # scratch it trains the project's kind, by its modality when none is named (a CT project:
    # the 3D CT detector). The registry builds it from the settings.
    if start.version is not None and loop.model_kind in ("", start.version.model_kind):
        kind = start.version.model_kind
    else:
        kind = model_kind(project)
        if start.version is not None:
            start = versions.WarmStart(
                None,
                f"the project trains {kind} models, version {start.version.number} is a "
                f"{start.version.model_kind} model: from scratch",
            )
            warm = None
    model = kinds.new_model(kind, project.finding_keys, loop.model_config)
    if start.version is not None and warm is not None:
        refusal = model.refuses_to_build_on(warm)
        if refusal is not None:
            why = f"version {start.version.number} cannot be built on: {refusal}"
            record_progress(cycle, log=f"{why}: cold start", owner=owner)
            start, warm = versions.WarmStart(None, f"{why}: from scratch"), None
    volumes = reads_volumes(model)  # the 3D detector reads each case's series as a volume
    backbone, point = None, None
    if warm is None:  # a cold start: LoopSettings.cold_start says from what
        backbone, point, why = _cold_start(project, model, loop)
        record_progress(cycle, log=f"cold start: {why}", owner=owner)
        # Why there is no parent (none yet, a changed label schema, a version this model cannot
        # build on), then what the cold start begins from.
        lead = start.reason.removesuffix(": from scratch")
        if lead.startswith("no earlier version"):
            lead = "no earlier version"
        if point is not None:
            start = versions.WarmStart(None, f"{lead}: from the stored starting point {point.name}")
        elif backbone is not None:
            start = versions.WarmStart(None, f"{lead}: from pretrained backbone {backbone.number}")
    # Training is counted in optimisation steps (the built-in kind's train_steps, warm-up +
    # cosine): epochs over 10-80 labels gave too few steps to learn from.
    steps = model.training_steps
    cold: dict[str, Any] = {}  # the built-in kind's cold-start weights, when found
    if backbone is not None:
        cold["backbone_init"] = backbone.weights_path
    if point is not None:
        cold["starting_point"] = point.name
    with stage(cycle, "training", owner):
        model.train(
            labelled_source(ids, volumes=volumes),
            max_steps=steps,
            warm_start=warm,
            progress=_training_progress(cycle, owner, max(steps or 1, 1)),
            **cold,
        )
    with stage(cycle, "evaluating", owner):
        # What the version may show is chosen on the validation labels before it is evaluated
        # and saved (the points travel in its checkpoint); with none, nothing is reliable.
        validation_ids = training_annotations(project, validation=True).values_list("pk", flat=True)
        model.fit_operating_points(labelled_source(list(validation_ids), volumes=volumes)())
        metrics, compared, evidence = _evaluate(project, model, serving, loop)
        if backbone is not None:
            metrics["pretrained_backbone"] = {
                "number": backbone.number,
                "sha256": backbone.weights_sha256,
                "images": backbone.image_count,
            }
        if point is not None:
            metrics["starting_point"] = {"name": point.name, "sha256": point.card["sha256"]}
    with stage(cycle, "registering", owner):
        version = _register(cycle, project, model, metrics, start, owner)
    record_progress(
        cycle,
        log=f"registered version {version.number} (started from {start.reason})",
        owner=owner,
    )
    _decide_promotion(cycle, project, version, compared, owner, evidence=evidence, loop=loop)
    _queue_scoring(cycle, owner)
    return True


def _cold_start(
    project: Project, model: SuggestionModel, loop: LoopSettings
) -> tuple[Any, Any, str]:
    """(pretrained backbone row, stored starting point, why) for a cycle with no version to
    build on, by ``loop.cold_start``: ``stored`` takes the stored detector starting point
    (:mod:`active_learning.ml.builtin.starting_point`) and falls back to the project's
    backbone when it is missing or does not fit the model's settings; ``backbone`` takes the
    project's self-supervised backbone and falls back to the stored point; ``scratch`` neither.
    Both are the built-in kind's weights: another kind starts from scratch."""
    from active_learning.ml.builtin import BuiltinModel
    from active_learning.ml.builtin import starting_point as stored

    if loop.cold_start == LoopSettings.ColdStart.SCRATCH:
        return None, None, "from scratch (loop setting)"
    if not isinstance(model, BuiltinModel):
        why = f"no stored starting point or backbone for {model.kind} models: from scratch"
        return None, None, why
    config = model.config

    def from_stored() -> tuple[Any, str]:
        try:
            point = stored.load(stored.DEFAULT)
        except stored.StartingPointError as exc:
            return None, str(exc)
        problem = stored.fits(config, point)
        if problem:
            return None, f"stored starting point {point.name!r} does not fit: {problem}"
        return point, f"stored detector starting point {point.name} ({point.card['sha256'][:12]})"

    def from_backbone() -> tuple[Any, str]:
        return pretraining.backbone_for_cold_start(project, config)

    order = [("stored", from_stored), ("backbone", from_backbone)]
    if loop.cold_start == LoopSettings.ColdStart.BACKBONE:
        order.reverse()
    reasons = []
    for source, find in order:
        found, why = find()
        reasons.append(why)
        if found is not None:
            why = "; ".join(reasons)
            return (None, found, why) if source == "stored" else (found, None, why)
    return None, None, "; ".join(reasons) + ": from scratch"


def _warm_start(
    cycle: RetrainingCycle,
    serving: ModelVersion | None,
    project: Project,
    loop: LoopSettings,
    owner: str,
) -> versions.WarmStart:
    """The version training starts from (``LoopSettings.warm_start``, see
    :func:`versions.choose_warm_start`), its files checked against the registered checksum;
    from scratch when the label schema changed since it."""
    start = versions.choose_warm_start(project=project, serving=serving, mode=loop.warm_start)
    parent = start.version
    if parent is None:
        record_progress(cycle, log="no earlier version to build on", owner=owner)
        return start
    manifest = read_manifest(parent.weights_path)
    if manifest["checksum"] != parent.weights_sha256:
        raise CheckpointError(
            f"version {parent.number}: the files at {parent.weights_path} are not "
            "the ones registered"
        )
    if manifest.get("finding_classes") != project.finding_keys:
        record_progress(
            cycle, log=f"label schema changed since version {parent.number}: cold start",
            owner=owner,
        )  # fmt: skip
        return versions.WarmStart(
            None, f"label schema changed since version {parent.number}: from scratch"
        )
    record_progress(
        cycle, log=f"warm start from version {parent.number} ({start.reason})", owner=owner
    )
    return start


def _training_progress(cycle: RetrainingCycle, owner: str, total_steps: int) -> Callable:
    """Percent, steps done of ``total_steps`` and heartbeat at most once a second (and at the
    last step); a log line per epoch (a block of steps)."""
    low, high = BANDS["training"]
    last_time = [0.0]
    last_epoch = [""]

    def progress(message: str, loss: float) -> None:
        now = time.monotonic()
        epoch = message.split(",", 1)[0]
        new_epoch = epoch != last_epoch[0]
        step = int(message.rsplit("step ", 1)[-1]) if "step " in message else 0
        if now - last_time[0] < 1.0 and not new_epoch and step < total_steps:
            return
        last_time[0], last_epoch[0] = now, epoch
        record_progress(
            cycle,
            progress=low + (high - low) * min(step / total_steps, 1.0),
            log=f"{message}, loss {loss:.3f}" if new_epoch else None,
            owner=owner,
            within={"unit": "steps", "done": min(step, total_steps), "total": total_steps},
        )

    return progress


def _evaluate(
    project: Project, model: SuggestionModel, serving: ModelVersion | None, loop: LoopSettings
) -> tuple[dict[str, Any], dict[str, Any], promotion.Evidence]:
    """Candidate and serving version on the same validation labels (held out at ingest): each
    one's evaluation, and the promotion guard's evidence (positives per class, the paired
    bootstrap of the promotion metric)."""
    validation = list(training_annotations(project, validation=True).values_list("pk", flat=True))
    metrics: dict[str, Any] = {"validation_labels": len(validation)}
    compared: dict[str, Any] = {"metric": loop.promotion_metric, "validation": len(validation)}
    if not validation:
        return metrics, compared, promotion.Evidence(loop.promotion_metric, 0)
    source = labelled_source(validation, volumes=reads_volumes(model))
    metrics["validation"] = model.evaluate(source())
    compared["candidate"] = metric_value(
        metrics["validation"], loop.promotion_metric, kind=model.kind
    )
    served_model = versions.load_version(serving) if serving is not None else None
    if served_model is not None and reads_volumes(served_model) != reads_volumes(model):
        served_model = None  # it reads other inputs (images, not volumes): no case-wise compare
    if serving is not None and served_model is not None:
        served = served_model.evaluate(source())
        compared["serving"] = metric_value(served, loop.promotion_metric, kind=served_model.kind)
        compared["serving_version"] = serving.number
    metrics["primary"] = {"name": loop.promotion_metric, "value": compared["candidate"]}
    evidence = promotion.gather_evidence(
        cases=source(),
        candidate=model,
        serving=served_model,
        metric=loop.promotion_metric,
        loop=loop,
    )
    metrics["validation_positives"] = evidence.positives
    return metrics, compared, evidence


def _register(
    cycle: RetrainingCycle,
    project: Project,
    model: SuggestionModel,
    metrics: dict[str, Any],
    start: versions.WarmStart,
    owner: str,
) -> ModelVersion:
    number = versions.next_number(project)
    directory = versions.version_directory(project, number)
    # Left by a delivery that died before registering: never registered, never used.
    if directory.exists():
        shutil.rmtree(directory)
    for staging in directory.parent.glob(f".{directory.name}.*"):
        shutil.rmtree(staging, ignore_errors=True)
    model.save(directory)
    try:
        with transaction.atomic():
            record_progress(cycle, owner=owner)  # still ours, not cancelled: then register
            version = versions.register_version(
                project=project,
                number=number,
                directory=directory,
                metrics={**metrics, "training_labels": len(cycle.label_snapshot)},
                label_snapshot=cycle.label_snapshot,
                parent=start.version,
                parent_reason=start.reason,
                strategy=cycle.strategy,
            )
            RetrainingCycle.objects.filter(pk=cycle.pk).update(model_version=version)
            cycle.model_version = version
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return version


def _decide_promotion(
    cycle: RetrainingCycle,
    project: Project,
    version: ModelVersion,
    compared: dict[str, Any],
    owner: str,
    *,
    evidence: promotion.Evidence,
    loop: LoopSettings,
) -> None:
    """The promotion guard (:mod:`active_learning.services.promotion`): promote, or leave the
    version for a model owner with the numbers in the log, the outcome and the version."""
    decision = promotion.decide(
        evidence=evidence,
        candidate_value=compared.get("candidate"),
        serving_value=compared.get("serving"),
        has_serving=versions.promoted_version(project) is not None,
        loop=loop,
    )
    why = decision.reason
    promoted = False
    if decision.promote and loop.auto_promote:
        versions.promote(version)
        promoted = True
        record_progress(cycle, log=f"promoted version {version.number}: {why}", owner=owner)
    elif decision.promote:
        record_progress(
            cycle,
            log=f"version {version.number} passes the promotion guard ({why}); automatic "
            "promotion is off: waiting for a model owner",
            owner=owner,
        )
    else:
        record_progress(
            cycle,
            log=f"version {version.number} not promoted: {why}; waiting for a model owner",
            owner=owner,
        )
    check = promotion.promotion_check(
        evidence=evidence, decision=decision, loop=loop, auto_promote=loop.auto_promote
    )
    ModelVersion.objects.filter(pk=version.pk).update(promotion_check=check)
    version.promotion_check = check
    outcome = {
        **cycle.outcome,
        **compared,
        "improved": decision.promote,
        "promoted": promoted,
        "promotion_check": check,
        "parent_version": version.parent.number if version.parent else None,
        "parent_reason": version.parent_reason,
    }
    cycle.outcome = outcome
    RetrainingCycle.objects.filter(pk=cycle.pk).update(outcome=outcome)


# --- stage 2: scoring -------------------------------------------------------------------------


def cases_to_score(project: Project, version: ModelVersion) -> list[int]:
    """Open cases (still needing reads) without a suggestion from ``version``."""
    scored = Suggestion.objects.filter(model_version=version).values("case_id")
    return list(
        Case.objects.filter(project=project, state=Case.State.OPEN)
        .exclude(pk__in=scored)
        .exclude(study__patient__consent_status=Consent.WITHDRAWN)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _queue_scoring(cycle: RetrainingCycle, owner: str | None) -> None:
    serving = versions.promoted_version(cycle.project)
    with transaction.atomic():
        locked = RetrainingCycle.objects.select_for_update().get(pk=cycle.pk)
        if locked.status not in ACTIVE:
            raise CycleStopped(f"cycle {cycle.pk} is {locked.status}")
        if not locked.chunks and serving is not None:
            ids = cases_to_score(cycle.project, serving)
            size = settings.MEDLOOP_SCORING_CHUNK
            locked.chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
            locked.outcome = {**locked.outcome, "scoring_version": serving.number}
            locked.save(update_fields=["chunks", "outcome"])
        cycle.chunks, cycle.outcome = locked.chunks, locked.outcome
    if not cycle.chunks:
        record_progress(cycle, stage="scoring", log="nothing to score", owner=owner)
        send_after_commit("active_learning.rank_cycle", cycle.pk)
        return
    done = {str(i): len(cycle.chunks[i]) for i in cycle.chunks_done}
    record_progress(
        cycle,
        stage="scoring",
        progress=_scoring_percent(sum(done.values()), sum(map(len, cycle.chunks))),
        within={
            "unit": "cases",
            "done": sum(done.values()),
            "total": sum(map(len, cycle.chunks)),
            "chunks": done,
        },
        log=f"scoring {sum(map(len, cycle.chunks))} cases in {len(cycle.chunks)} chunks "
        f"with version {cycle.outcome['scoring_version']}",
        owner=owner,
    )
    RetrainingCycle.objects.filter(pk=cycle.pk).update(claimed_by="")
    for index in range(len(cycle.chunks)):
        if index not in cycle.chunks_done:
            send_after_commit("active_learning.score_chunk", cycle.pk, index)


def _scoring_percent(done: int, total: int) -> float:
    low, high = BANDS["scoring"]
    return low + (high - low) * (done / total if total else 1.0)


def _record_scored(locked: RetrainingCycle, index: int, handled: int) -> None:
    """Count ``handled`` cases of chunk ``index`` as scored in ``locked.stage_progress`` and
    the percent (cases of every chunk, summed: chunks run on several workers at once)."""
    within = dict(locked.stage_progress or {})
    if within.get("stage") != "scoring":
        within = {"stage": "scoring", "started_at": timezone.now().isoformat()}
    # A redelivered chunk starts counting again; what the earlier delivery stored stays
    # stored, so the count (and the bar) never goes back.
    known = within.get("chunks", {})
    chunks = {**known, str(index): max(handled, int(known.get(str(index), 0)))}
    total = sum(map(len, locked.chunks))
    done = sum(chunks.values())
    locked.stage_progress = {**within, "unit": "cases", "total": total, "done": done,
                             "chunks": chunks}  # fmt: skip
    locked.progress = round(_scoring_percent(done, total), 1)
    locked.heartbeat_at = timezone.now()


def _scoring_progress(cycle_id: int, index: int) -> Callable[[int], None]:
    """The callback :func:`score_cases` calls after each batch with the cases handled so far:
    cases done and percent, and :class:`CycleStopped` once the cycle was cancelled."""

    def progress(handled: int) -> None:
        with transaction.atomic():
            locked = RetrainingCycle.objects.select_for_update().get(pk=cycle_id)
            if locked.status not in ACTIVE:
                raise CycleStopped(f"cycle {cycle_id} is {locked.status}")
            if index in locked.chunks_done:
                return
            _record_scored(locked, index, handled)
            locked.save(update_fields=["stage_progress", "progress", "heartbeat_at"])

    return progress


def run_scoring_chunk(cycle_id: int, index: int) -> None:
    """Score one chunk with the serving version (idempotent), the cases done reported after
    each batch; the last chunk queues ranking."""
    from active_learning.services.suggestions import score_cases

    cycle = RetrainingCycle.objects.select_related("project").filter(pk=cycle_id).first()
    if cycle is None or cycle.status not in ACTIVE or index >= len(cycle.chunks):
        return
    if index in cycle.chunks_done:
        return
    version = ModelVersion.objects.get(
        project=cycle.project, number=cycle.outcome["scoring_version"]
    )
    started = time.perf_counter()
    result = score_cases(
        version=version,
        case_ids=cycle.chunks[index],
        embeddings=True,
        progress=_scoring_progress(cycle_id, index),
    )
    seconds = time.perf_counter() - started
    with transaction.atomic():
        locked = RetrainingCycle.objects.select_for_update().get(pk=cycle_id)
        if locked.status not in ACTIVE or index in locked.chunks_done:
            return
        locked.chunks_done = [*locked.chunks_done, index]
        done, total = len(locked.chunks_done), len(locked.chunks)
        _record_scored(locked, index, len(locked.chunks[index]))
        locked.stage_seconds = {
            **locked.stage_seconds,
            "scoring": round(locked.stage_seconds.get("scoring", 0.0) + seconds, 2),
        }
        skipped = f", {len(result.skipped)} skipped" if result.skipped else ""
        locked.log = [
            *locked.log,
            log_line(f"chunk {done}/{total}: {result.stored} cases scored{skipped}"),
        ][-LOG_LINES:]
        locked.save(
            update_fields=[
                "chunks_done", "progress", "heartbeat_at", "stage_seconds", "log",
                "stage_progress",
            ]
        )  # fmt: skip
        if done == total:
            send_after_commit("active_learning.rank_cycle", cycle_id)


def refresh_serving(project: Project) -> int:
    """After a model owner promotes or rolls back: score the open cases the serving version
    has not scored yet (suggestions, scores, embeddings), then re-rank the queue with them.
    Returns the number of cases ranked."""
    from active_learning.services.ranking import rerank_project
    from active_learning.services.suggestions import score_cases

    serving = versions.promoted_version(project)
    if serving is not None:
        ids = cases_to_score(project, serving)
        size = settings.MEDLOOP_SCORING_CHUNK
        for start in range(0, len(ids), size):
            score_cases(version=serving, case_ids=ids[start : start + size], embeddings=True)
    return rerank_project(project)


# --- stage 3: ranking -------------------------------------------------------------------------


def run_ranking(cycle_id: int) -> None:
    """Re-rank the queue with the project's strategy and finish the cycle (idempotent)."""
    from active_learning.services.ranking import rerank_project

    cycle = RetrainingCycle.objects.select_related("project").filter(pk=cycle_id).first()
    if cycle is None or cycle.status not in ACTIVE:
        return
    with stage(cycle, "ranking"):
        ranked = rerank_project(cycle.project, strategy=cycle.strategy or None)
    with transaction.atomic():
        locked = RetrainingCycle.objects.select_for_update().get(pk=cycle_id)
        if locked.status not in ACTIVE:
            return
        locked.status = Status.SUCCEEDED
        locked.stage = "done"
        locked.progress = 100.0
        locked.finished_at = timezone.now()
        locked.outcome = {**locked.outcome, "ranked_cases": ranked}
        locked.log = [*locked.log, log_line(f"queue re-ranked ({ranked} open cases); done")][
            -LOG_LINES:
        ]
        locked.save(update_fields=["status", "stage", "progress", "finished_at", "outcome", "log"])


# --- watchdog ---------------------------------------------------------------------------------


def resume_stalled() -> list[int]:
    """Re-queue the current stage of active cycles whose claimant stopped sending heartbeats
    (a worker that died where the broker cannot redeliver, e.g. the file-system broker); after
    ``MEDLOOP_CYCLE_MAX_ATTEMPTS`` resumptions the cycle fails. Returns the cycles touched."""

    stale = timezone.now() - timedelta(seconds=settings.MEDLOOP_CYCLE_STALE_SECONDS)
    touched = []
    for cycle in RetrainingCycle.objects.filter(status__in=ACTIVE):
        last = cycle.heartbeat_at or cycle.created_at
        if last >= stale:
            continue
        attempts = int(cycle.outcome.get("resumed", 0)) + 1
        if attempts > settings.MEDLOOP_CYCLE_MAX_ATTEMPTS:
            fail(cycle.pk, f"no progress for {settings.MEDLOOP_CYCLE_STALE_SECONDS} s, "
                           f"{attempts - 1} times; giving up")  # fmt: skip
            touched.append(cycle.pk)
            continue
        RetrainingCycle.objects.filter(pk=cycle.pk).update(
            outcome={**cycle.outcome, "resumed": attempts},
            heartbeat_at=timezone.now(),
            log=[*cycle.log, log_line(f"no heartbeat since {last:%H:%M:%S}: resuming")][
                -LOG_LINES:
            ],
        )
        if cycle.model_version_id is None or not cycle.chunks:
            send_after_commit("active_learning.train_cycle", cycle.pk)
        elif len(cycle.chunks_done) < len(cycle.chunks):
            for index in range(len(cycle.chunks)):
                if index not in cycle.chunks_done:
                    send_after_commit("active_learning.score_chunk", cycle.pk, index)
        else:
            send_after_commit("active_learning.rank_cycle", cycle.pk)
        touched.append(cycle.pk)
    return touched
