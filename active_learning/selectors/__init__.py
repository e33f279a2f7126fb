"""The loop's reads (HackSoft's selectors, as ``annotations.selectors``): here what each
version's figures and promotion decision rest on and how long an active retraining cycle has
left; the Models page's charts in :mod:`active_learning.selectors.model_dashboard`.

A figure the page shows as "—" always comes with why (no validation labels, no box among them,
no finding with both a present and an absent label...). A version's promotion decision comes
with its inputs: the promotion metric of both versions as the cycle measured them on the same
validation labels, the paired-bootstrap interval, the validation labels against the minimum.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from active_learning.ml.metrics.boxes import LUNA16_FROC_RATES
from active_learning.models import ModelVersion, RetrainingCycle
from active_learning.services.cycle_claims import BANDS
from active_learning.services.metric_schema import combined_parts, metric_value

# The figures the versions table and the confirmation show, with their names on the page.
FIGURES = {
    "boxes.map_50": "mAP@0.5",
    "findings.auroc_macro": "AUROC macro",
    "reports.bleu_4": "BLEU-4",
    "reports.finding_f1_micro": "report finding F1",
    "combined": "combined",
}

# A 3D kind's figures besides (issue 21): FROC, the LUNA16 measure (sensitivity at 1/8 ... 8
# false positives per scan, and their mean), and mAP at 3D IoU 0.1 (the MONAI model zoo's lung
# nodule figure), as the CT detector's evaluation stores them
# (active_learning.ml.ct_detector.model.CTDetector.evaluate).
VOLUME_KINDS = ("ct_retinanet3d",)
_RATE_NAMES = {0.125: "1/8", 0.25: "1/4", 0.5: "1/2"}
VOLUME_FIGURES = {
    **{
        f"froc.sensitivity_at_{rate:g}_fp": (
            f"sensitivity at {_RATE_NAMES.get(rate, f'{rate:g}')} FP per scan"
        )
        for rate in LUNA16_FROC_RATES
    },
    "froc.froc_mean": "FROC (mean sensitivity, LUNA16)",
    "boxes.map_10": "mAP@0.1 (3D IoU)",
    "boxes.map_at_match_iou": "mAP at the 3D match IoU (as the promotion guard computes it)",
}


def _labels_text(count: int) -> str:
    return f"{count} validation label{'s' if count != 1 else ''}"


def _why_missing(
    key: str, validation: Any, labels: int | None, positives: dict[str, int], kind: str = ""
) -> str:
    """Why the figure ``key`` of an evaluation is not a number, in words for the page."""
    if not isinstance(validation, dict):
        if not labels:
            return "not evaluated: the project had no labelled validation case when it was trained"
        return "not evaluated on validation labels"
    n = labels if labels is not None else validation.get("cases")
    among = f"among its {_labels_text(n)}" if isinstance(n, int) else "among its validation labels"
    section = key.partition(".")[0]
    if key == "combined":
        parts = ", ".join(FIGURES.get(p, VOLUME_FIGURES.get(p, p)) for p in combined_parts(kind))
        return f"none of its parts ({parts}) is defined {among}"
    if section == "boxes":
        return f"no lesion box {among}; mAP needs at least one"
    if section == "froc":
        if not isinstance(validation.get("froc"), dict):
            return "not measured: the version's evaluation has no FROC"
        return f"no lesion box {among}; FROC needs at least one"
    if section == "findings":
        counts = ", ".join(f"{name} {count}" for name, count in positives.items())
        present = f" (cases with the finding present: {counts})" if counts else ""
        return (
            f"no finding had both a present and an absent label {among}{present}; AUROC needs both"
        )
    if section == "reports":
        return f"not defined on the reports {among}"
    return f"not measured {among}"


def version_figures(version: ModelVersion, metric: str) -> dict[str, Any]:
    """The version's validation figures (``FIGURES`` and the promotion ``metric``; for a 3D
    kind's version ``VOLUME_FIGURES`` too: FROC at LUNA16's rates and mAP at 3D IoU 0.1), each
    ``{"value": float | None, "missing": why it is None}``, and the labels they rest on;
    ``froc_iou``, the 3D IoU a FROC hit needs (None for a 2D version)."""
    validation = version.metrics.get("validation")
    labels = version.metrics.get("validation_labels")
    positives = version.metrics.get("validation_positives") or {}
    volume = version.model_kind in VOLUME_KINDS
    figures = {}
    for key in dict.fromkeys([*FIGURES, metric, *(VOLUME_FIGURES if volume else ())]):
        kind = version.model_kind
        value = metric_value(validation, key, kind=kind) if isinstance(validation, dict) else None
        missing = (
            "" if value is not None else _why_missing(key, validation, labels, positives, kind)
        )
        figures[key] = {"value": value, "missing": missing}
    froc = validation.get("froc") if volume and isinstance(validation, dict) else None
    froc_iou = froc.get("iou_threshold") if isinstance(froc, dict) else None
    return {
        "validation_labels": labels if isinstance(labels, int) else None,
        "positives": positives,
        "figures": figures,
        "froc_iou": froc_iou if isinstance(froc_iou, int | float) else None,
    }


def _verdict(check: dict[str, Any], promoted_by_cycle: bool) -> str:
    """The guard's verdict in a few words; the figures it rests on go beside it."""
    if promoted_by_cycle:
        return "promoted by its cycle"
    if check.get("passed"):
        return "passed the guard; waiting for a model owner (automatic promotion off)"
    labels, needed = check.get("validation_labels"), check.get("min_validation_labels")
    if isinstance(labels, int) and isinstance(needed, int) and labels < needed:
        why = "too few validation labels"
    else:
        # The reason's head ("no gain beyond noise", "no paired comparison").
        head, colon, _ = str(check.get("reason", "")).partition(":")
        why = head if colon and len(head) <= 40 else "the guard did not pass"
    return f"not promoted ({why}): waiting for a model owner"


def promotion_decision(version: ModelVersion, cycle: RetrainingCycle | None) -> dict[str, Any]:
    """The promotion guard's decision on ``version`` with its inputs, from the version's
    ``promotion_check`` and the outcome of the cycle that made it: the promotion metric of the
    candidate and of the version then serving, both measured on the same validation labels
    (``compared_with``: that version's number), and the paired-bootstrap interval. Empty
    ``checked`` for a version made outside a cycle."""
    check = version.promotion_check or {}
    if not check:
        return {"checked": False, "verdict": "no promotion check: made outside a cycle"}
    outcome = cycle.outcome if cycle is not None else {}
    return {
        "checked": True,
        "verdict": _verdict(check, bool(outcome.get("promoted"))),
        "passed": bool(check.get("passed")),
        "reason": check.get("reason", ""),
        "metric": check.get("metric", ""),
        "measure": check.get("measure", ""),
        "validation_labels": check.get("validation_labels"),
        "min_validation_labels": check.get("min_validation_labels"),
        "compared_with": outcome.get("serving_version"),
        "candidate_value": outcome.get("candidate"),
        "serving_value": outcome.get("serving"),
        "bootstrap": check.get("bootstrap"),
        "bootstrap_error": check.get("bootstrap_error", ""),
        "auto_promote": check.get("auto_promote"),
    }


def version_evidence(version: ModelVersion, metric: str) -> dict[str, Any]:
    """What the Models page shows of a version: figures with why one is missing, and the
    promotion decision with its inputs (:func:`version_figures`, :func:`promotion_decision`).
    Uses ``version.cycles`` (prefetch it for a list)."""
    made_by = sorted(version.cycles.all(), key=lambda c: c.created_at)
    return {
        **version_figures(version, metric),
        "decision": promotion_decision(version, made_by[-1] if made_by else None),
    }


# --- time left ----------------------------------------------------------------------------------

STAGES = list(BANDS)


def _since(iso: str | None, now: datetime) -> float | None:
    if not iso:
        return None
    try:
        started = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return max((now - started).total_seconds(), 0.0)


def cycle_estimate(cycle: RetrainingCycle, *, earlier: RetrainingCycle | None) -> dict[str, Any]:
    """How long the active ``cycle`` has left: the current stage from its own pace (steps or
    cases per second so far), the stages after it as ``earlier`` (the project's last finished
    cycle) took them. ``seconds`` None when nothing can be estimated yet; ``basis`` says what
    the estimate rests on; ``complete`` False when a later stage has no earlier time to go by
    (the estimate then covers the current stage only)."""
    if cycle.status not in RetrainingCycle.ACTIVE:
        return {"seconds": None, "basis": "", "complete": True}
    if cycle.status == RetrainingCycle.Status.QUEUED:
        return {"seconds": None, "basis": "waiting for a worker", "complete": False}
    if cycle.stage not in BANDS:  # claimed: freezing the labels, choosing where to start
        return {"seconds": None, "basis": "starting", "complete": False}
    now = timezone.now()
    within = cycle.stage_progress or {}
    past = (earlier.stage_seconds if earlier is not None else {}) or {}
    current: float | None = None
    basis = ""
    done, total = within.get("done"), within.get("total")
    elapsed = _since(within.get("started_at"), now) if within.get("stage") == cycle.stage else None
    if isinstance(done, int) and isinstance(total, int) and total > 0 and elapsed is not None:
        unit = within.get("unit", "")
        if done >= total:
            current = 0.0
        elif done > 0 and elapsed > 0:
            rate = done / elapsed
            current = (total - done) / rate
            basis = f"{cycle.stage}: {done}/{total} {unit} at {rate:.2f} {unit}/s"
        else:
            basis = f"{cycle.stage}: no {unit} done yet"
    elif cycle.stage in past and elapsed is not None:
        current = max(float(past[cycle.stage]) - elapsed, 0.0)
        basis = f"{cycle.stage} as long as in the last cycle"
    later = STAGES[STAGES.index(cycle.stage) + 1 :]
    unknown = [name for name in later if name not in past]
    if current is None:
        return {"seconds": None, "basis": basis or f"{cycle.stage}: not measured yet",
                "complete": False}  # fmt: skip
    seconds = current + sum(float(past[name]) for name in later if name in past)
    if later and not unknown:
        basis += ("; " if basis else "") + "the later stages as the last cycle took them"
    elif unknown:
        basis += ("; " if basis else "") + f"not counting {', '.join(unknown)} (no earlier cycle)"
    return {"seconds": round(seconds, 1), "basis": basis, "complete": not unknown}


def last_finished_cycle(cycle: RetrainingCycle) -> RetrainingCycle | None:
    """The project's newest succeeded cycle before ``cycle``: the pace of the stages to come."""
    return (
        RetrainingCycle.objects.filter(
            project_id=cycle.project_id,
            status=RetrainingCycle.Status.SUCCEEDED,
            created_at__lt=cycle.created_at,
        )
        .order_by("-created_at")
        .first()
    )
