"""The Models page explains its figures and asks before the serving version changes (issue 18,
item 5): each version's promotion decision with the inputs it was made on, every "—" with why,
and a confirmation that shows both versions' validation figures, their validation labels and
the paired-bootstrap interval. The confirmed promotion and roll back of really trained versions
are in test_models_page.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone

from active_learning.models import ModelVersion, RetrainingCycle
from active_learning.services.loop_settings import update_loop_settings
from tests.support.browser import log_in

MINUS = "\u2212"  # the page writes differences with a true minus sign

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _writes_sent(page) -> list[str]:
    """The requests other than GET the page sends from now on, as "METHOD url"."""
    sent: list[str] = []
    page.on(
        "request",
        lambda request: (
            sent.append(f"{request.method} {request.url}") if request.method != "GET" else None
        ),
    )
    return sent


def _reload_models_page(page) -> None:
    """Reload and wait for the page to be ready: a request sent before the reload has been
    reported by then, and the page shows what the server holds."""
    page.reload()
    page.wait_for_selector("#models-page[data-state=ready]")


BOOTSTRAP = {
    "metric": "combined",
    "cases": 12,
    "resamples": 2000,
    "resamples_used": 1987,
    "seed": 0,
    "confidence": 0.95,
    "candidate": 0.3333,
    "serving": 0.3333,
    "difference": 0.0,
    "low": -0.0412,
    "high": 0.0398,
    "p_not_better": 0.51,
    "beyond_noise": False,
}


def _versions(project) -> None:
    """v1 served first, trained when one validation label existed (AUROC undefined on it);
    v2, checked against v1 on twelve validation labels, not promoted: the issue's case."""
    update_loop_settings(project=project, promotion_metric="combined")
    v1 = ModelVersion.objects.create(
        project=project,
        number=1,
        status=ModelVersion.Status.PROMOTED,
        promoted_at=timezone.now(),
        label_count=4,
        metrics={
            "validation_labels": 1,
            "validation_positives": {"nodule": 0},
            "validation": {
                "boxes": {"map_50": 0.1},
                "findings": {"auroc_macro": None, "auroc": {"nodule": None}},
                "reports": {"bleu_4": 0.2, "finding_f1_micro": 0.4},
            },
        },
    )
    check = {
        "metric": "combined",
        "validation_labels": 12,
        "min_validation_labels": 10,
        "positives": {"nodule": 5},
        "bootstrap": BOOTSTRAP,
        "bootstrap_error": "",
        "passed": False,
        "reason": "no gain beyond noise: combined 0.3333 vs 0.3333; ...",
        "auto_promote": True,
        "waiting_for_owner": True,
    }
    v2 = ModelVersion.objects.create(
        project=project,
        number=2,
        label_count=16,
        parent=v1,
        metrics={
            "validation_labels": 12,
            "validation_positives": {"nodule": 5},
            "validation": {
                "boxes": {"map_50": 0.0},
                "findings": {"auroc_macro": 1.0},
                "reports": {"bleu_4": 0.1, "finding_f1_micro": 0.0},
            },
        },
        promotion_check=check,
    )
    RetrainingCycle.objects.create(
        project=project,
        status=RetrainingCycle.Status.SUCCEEDED,
        stage="done",
        progress=100.0,
        model_version=v2,
        outcome={
            "metric": "combined",
            "candidate": 0.3333,
            "serving": 0.3333,
            "serving_version": 1,
            "promoted": False,
            "promotion_check": check,
        },
    )


def test_each_decision_shows_its_inputs_and_promoting_asks_first(
    page, live_server, project, member, artifacts_dir: Path
):
    _versions(project)
    member("mona", "model_owner")
    log_in(page, live_server, "mona")
    page.goto(f"{live_server.url}/projects/{project.pk}/models/")
    page.wait_for_selector("#models-page[data-state=ready]")

    # The figures and the labels they rest on; "—" says why.
    v1, v2 = "#versions tr[data-version='1']", "#versions tr[data-version='2']"
    assert page.text_content(f"{v1} [data-testid=validation-labels]") == "1"
    assert page.text_content(f"{v2} [data-testid=validation-labels]") == "12"
    assert page.text_content(f"{v2} td[data-metric='findings.auroc_macro']") == "1.000"
    assert page.text_content(f"{v1} td[data-metric='findings.auroc_macro']").startswith("—")
    notes = page.text_content("#figure-notes")
    assert "v1 AUROC macro —" in notes
    assert "no finding had both a present and an absent label among its 1 validation label" in notes

    # The decision with what decided it: both versions on the same labels, and the interval.
    decision = page.text_content("#versions tr[data-decision='2']")
    assert "not promoted (no gain beyond noise)" in decision
    assert "combined 0.3333 vs v1 0.3333, both on the same 12 validation labels" in decision
    assert "v1 measured again on these labels" in decision
    assert f"95 % interval [{MINUS}0.0412, +0.0398]" in decision and "not beyond noise" in decision
    first = page.text_content("#versions tr[data-decision='1']")
    assert "no promotion check" in first
    page.screenshot(path=str(artifacts_dir / "models-decisions.png"), full_page=True)

    # Promote asks first, showing both versions' figures, their labels and the interval.
    page.click(f"{v2} [data-testid=promote]")
    page.wait_for_selector("#confirm[open]")
    assert page.text_content("#confirm-title") == "Promote v2?"
    assert "instead of v1" in page.text_content("#confirm-effect")
    figures = "#confirm-figures"
    assert page.text_content(f"{figures} th[data-version='1']") == "v1 (serving now)"
    labels = f"{figures} tr[data-metric='validation_labels']"
    assert page.text_content(f"{labels} td[data-version='1']") == "1"
    assert page.text_content(f"{labels} td[data-version='2']") == "12"
    auroc = f"{figures} tr[data-metric='findings.auroc_macro']"
    assert page.text_content(f"{auroc} td[data-version='2']") == "1.000"
    assert "present and an absent label" in page.text_content(f"{auroc} td[data-version='1']")
    combined = f"{figures} tr[data-metric='combined']"
    assert page.text_content(f"{combined} td[data-version='1']") == "0.250"
    assert page.is_visible("#confirm-warning")
    assert "not measured on the same cases" in page.text_content("#confirm-warning")
    paired = page.text_content("#confirm-paired")
    assert "both were measured on the same 12 validation labels" in paired
    assert (
        f"v2 {MINUS} v1: +0.0000, 95 % interval [{MINUS}0.0412, +0.0398] over 1987 resamples"
        in paired
    )
    assert "no gain beyond noise" in paired
    page.screenshot(path=str(artifacts_dir / "models-confirm-promote.png"))

    # Cancel changes nothing: no request that could change anything leaves the page.
    writes = _writes_sent(page)
    page.click("#confirm-cancel")
    page.wait_for_selector("#confirm", state="hidden")
    _reload_models_page(page)
    assert writes == []
    assert ModelVersion.objects.get(project=project, number=2).status == "candidate"
    assert ModelVersion.objects.get(project=project, number=1).status == "promoted"
    assert page.is_hidden("#alert")


def test_roll_back_asks_first_with_both_versions(page, live_server, project, member):
    _versions(project)
    ModelVersion.objects.filter(project=project, number=1).update(status="retired")
    ModelVersion.objects.filter(project=project, number=2).update(
        status="promoted", promoted_at=timezone.now()
    )
    member("mona", "model_owner")
    log_in(page, live_server, "mona")
    page.goto(f"{live_server.url}/projects/{project.pk}/models/")
    page.wait_for_selector("#models-page[data-state=ready]")
    assert page.text_content("#rollback") == "Roll back to v1"

    page.click("#rollback")
    page.wait_for_selector("#confirm[open]")
    assert page.text_content("#confirm-title") == "Roll back to v1?"
    assert page.text_content("#confirm-figures th[data-version='2']") == "v2 (serving now)"
    labels = "#confirm-figures tr[data-metric='validation_labels']"
    assert page.text_content(f"{labels} td[data-version='1']") == "1"
    # v2's check was against v1: the interval is the same pair's, seen from v2.
    assert f"Paired bootstrap of v2 {MINUS} v1" in page.text_content("#confirm-paired")
    assert page.text_content("#confirm-ok") == "Roll back to v1"
    writes = _writes_sent(page)
    page.keyboard.press("Escape")
    page.wait_for_selector("#confirm", state="hidden")
    _reload_models_page(page)
    assert writes == []
    assert ModelVersion.objects.get(project=project, number=2).status == "promoted"
