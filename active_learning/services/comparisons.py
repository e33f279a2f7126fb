"""Comparison of two model versions on the same locked test set (issue 16): what a model owner
reads before promoting.

:func:`request_comparison` checks that both validation reports are finished on the same test
set version and cases, registers a :class:`~active_learning.models.VersionComparison` (or finds
the one already made or under way for the pair) and queues ``active_learning.version_comparison``;
:func:`run_comparison` (the task) computes it with progress; :func:`compare` is the computation:
every figure's paired case-level bootstrap difference ``a - b`` (both versions scored on the same
resamples: report ``a``'s resamples, seed and confidence) and DeLong's test per finding, from
the per-case outcomes the two reports stored (no model is run again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction

from active_learning.ml.verification.figures import (
    VersionOutcomes,
    delong_per_finding,
    paired_differences,
)
from active_learning.models import ValidationReport, VersionComparison
from active_learning.services import jobs
from active_learning.services.validation_reports import outcomes_from_json, report_figures_input
from annotations.services import audit
from annotations.services.errors import InvalidInput
from medloop.celery import send_after_commit

Actor = User | AnonymousUser
Progress = Callable[[str, float], None]
Status = VersionComparison.Status


def _check_pair(a: ValidationReport, b: ValidationReport) -> None:
    """Refuse (400, naming why) unless both reports are done on the same cases and findings."""
    for report in (a, b):
        if report.status != ValidationReport.Status.SUCCEEDED:
            raise InvalidInput(f"report {report.pk} is {report.status}, not finished.")
    if a.project_id != b.project_id or a.test_set_id != b.test_set_id:
        raise InvalidInput(
            f"reports {a.pk} and {b.pk} were made on different test sets "
            f"({a.test_set.content_hash[:12]} and {b.test_set.content_hash[:12]}): "
            "request both on the current one."
        )
    data_a, data_b = a.result["outcomes"], b.result["outcomes"]
    if data_a["case_ids"] != data_b["case_ids"] or data_a["classes"] != data_b["classes"]:
        raise InvalidInput(f"reports {a.pk} and {b.pk} do not cover the same cases and findings.")


def latest(a: ValidationReport, b: ValidationReport) -> VersionComparison | None:
    """The newest comparison of ``a`` against ``b``, or None."""
    return VersionComparison.objects.filter(report_a=a, report_b=b).first()


def request_comparison(
    *, a: ValidationReport, b: ValidationReport, actor: Actor | None
) -> tuple[VersionComparison, bool]:
    """Queue the comparison of report ``a``'s version against report ``b``'s. Returns it and
    whether it is new: a comparison of the pair that is queued, running or done is returned as
    it is (the same reports give the same figures); a failed one is asked for again."""
    _check_pair(a, b)
    with transaction.atomic():
        existing = (
            VersionComparison.objects.select_for_update()
            .filter(report_a=a, report_b=b)
            .exclude(status=Status.FAILED)
            .first()
        )
        if existing is not None:
            return existing, False
        comparison = VersionComparison.objects.create(
            project_id=a.project_id,
            report_a=a,
            report_b=b,
            requested_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit.record(
            action="version_comparison.request",
            actor=actor,
            target=comparison,
            project_id=a.project_id,
            detail={
                "report_a": a.pk,
                "report_b": b.pk,
                "version_a": a.model_version.number,
                "version_b": b.model_version.number,
                "test_set_hash": a.test_set.content_hash,
            },
        )
        send_after_commit("active_learning.version_comparison", comparison.pk)
    return comparison, True


def _version_outcomes(report: ValidationReport) -> VersionOutcomes:
    data = report.result["outcomes"]
    texts = data.get("report_texts")
    if texts is not None:
        scores, corpus = report_figures_input(texts)
    else:  # a report of format 1 stored per-case scores only
        scores = {
            name: np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            for name, values in data.get("report_scores", {}).items()
        }
        corpus = None
    return VersionOutcomes(
        outcomes_from_json(data),
        thresholds={k: v["threshold"] for k, v in report.result["thresholds"].items()},
        report_scores=scores,
        report_corpus=corpus,
    )


def compare(
    a: ValidationReport, b: ValidationReport, progress: Progress | None = None
) -> dict[str, Any]:
    """Version ``a`` against version ``b`` (module docstring); deterministic in the reports."""
    step = progress or (lambda stage, percent: None)
    _check_pair(a, b)
    version_a, version_b = _version_outcomes(a), _version_outcomes(b)
    step("resampling", 5.0)
    differences = paired_differences(
        version_a,
        version_b,
        resamples=a.resamples,
        seed=a.seed,
        confidence=a.confidence,
        progress=lambda share: step("resampling", 5.0 + 85.0 * share),
    )
    step("delong", 90.0)
    return {
        "a": {"report": a.pk, "version": a.model_version.number},
        "b": {"report": b.pk, "version": b.model_version.number},
        "test_set": {"version": a.test_set.version, "content_hash": a.test_set.content_hash},
        "cases": len(a.result["outcomes"]["case_ids"]),
        "statistics": {
            "method": "paired case-level percentile bootstrap",
            "resamples": a.resamples,
            "seed": a.seed,
            "confidence": a.confidence,
        },
        "differences": {name: d.as_dict() for name, d in differences.items()},
        "delong": delong_per_finding(version_a, version_b, confidence=a.confidence),
    }


def run_comparison(comparison_id: int) -> VersionComparison | None:
    """Compute a queued comparison (the task); a finished one is left as it is."""
    comparison = (
        VersionComparison.objects.select_related(
            "report_a__model_version", "report_a__test_set", "report_b__model_version"
        )
        .filter(pk=comparison_id)
        .first()
    )
    if comparison is None or comparison.status == Status.SUCCEEDED:
        return comparison

    progress = jobs.progress_writer(comparison)
    progress("starting", 0.0)
    try:
        result = compare(comparison.report_a, comparison.report_b, progress)
    except Exception as exc:
        jobs.fail(comparison, exc)
        if isinstance(exc, InvalidInput):  # a report changed under it: nothing to retry
            comparison.refresh_from_db()
            return comparison
        raise
    jobs.succeed(comparison, result)
    comparison.refresh_from_db()
    return comparison
