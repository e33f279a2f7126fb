"""The Models page's charts in a real browser: the learning curve on a training-labels axis with
the serving version marked, per-class metrics with a version picker, the acquisition scores of
the open cases, and suggestion usefulness per version; every chart drawn, its Chart.js data and
its data table equal to the hand-computed numbers of the scenario of
tests/active_learning/test_model_dashboard.py; the charts drawn again when a cycle finishes.

There is no Celery worker here: the test finishes the cycle the page started itself, as the
worker would have, while the page polls."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone

from active_learning.models import ModelVersion, RetrainingCycle
from frontend.templatetags import vite
from tests.active_learning import test_model_dashboard as dashboard_tests
from tests.conftest import api_client_for
from tests.support.browser import assert_charts_drawn, log_in

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

# The scenario of the service tests, and a version's metrics.
scenario = dashboard_tests.scenario
V2_METRICS = dashboard_tests.V2_METRICS
EN_DASH = "\u2013"  # between a score bin's edges

CHARTS = ("learning-curve", "per-class", "acquisition-scores", "suggestion-use", "corrections")

# Each table of numbers as {row key: {dataset key: cell text}}, hidden or not.
TABLES = """() => Object.fromEntries([...document.querySelectorAll('#model-charts table.numbers')]
  .map(t => [t.dataset.testid.replace('table-', ''),
    Object.fromEntries([...t.querySelectorAll('tbody tr')].map(tr => [tr.dataset.row,
      Object.fromEntries([...tr.querySelectorAll('td')].map(td => [td.dataset.dataset,
        td.textContent]))]))]))"""
CHART_DATA = "() => window.medloopModelCharts()"

CURVE_DATASETS = [
    "primary",
    "boxes.map_50",
    "findings.auroc_macro",
    "reports.finding_f1_micro",
    "reports.rouge_l_f_beta1.2",
]


def _row(keys, values) -> dict[str, str]:
    return dict(zip(keys, values, strict=True))


BIN_KEYS = [f"{i / 10:g}-{(i + 1) / 10:g}" for i in range(10)]
EXPECTED_TABLES = {
    # combined: mean of mAP@0.5, AUROC and finding F1 where defined (-1 is no ground truth).
    "learning-curve": {
        "v1": _row(CURVE_DATASETS, ["0.4", "0.2", "0.6", "0.4", "0.3"]),
        "v2": _row(CURVE_DATASETS, ["0.633", "0.5", "0.8", "0.6", "0.45"]),
        "v3": _row(CURVE_DATASETS, ["0.9", "—", "0.9", "—", "—"]),
    },
    # The serving v2 first.
    "per-class": {
        "nodule": {"ap_50": "0.6", "auroc": "0.8", "f1": "0.5"},
        "mass": {"ap_50": "0.4", "auroc": "0.8", "f1": "—"},
        "effusion": {"ap_50": "—", "auroc": "0.8", "f1": "—"},
    },
    # v2's scores of the open cases: 0.05, 0.15, 0.3, 0.95, 1.0; c10 and c11 without one.
    "acquisition-scores": {
        **{
            key: {"scored": str(n), "unscored": "—"}
            for key, n in zip(BIN_KEYS, [1, 1, 0, 1, 0, 0, 0, 0, 0, 2], strict=True)
        },
        "unscored": {"scored": "—", "unscored": "2"},
    },
    # Percent of each version's suggested boxes: v1 1 accepted, 1 rejected; v2 2 accepted,
    # 1 edited, 1 rejected; v3 2 rejected.
    "suggestion-use": {
        "v3": {"accepted": "0", "edited": "0", "rejected": "100"},
        "v2": {"accepted": "50", "edited": "25", "rejected": "25"},
        "v1": {"accepted": "50", "edited": "0", "rejected": "50"},
    },
    # Boxes drawn per case (v1 1 in 1, v2 2 in 2, v3 0); report edits: v1 1/6, v2 (0 + 2/3)/2.
    "corrections": {
        "v3": {"missed": "0", "report_edits": "—"},
        "v2": {"missed": "1", "report_edits": "0.333"},
        "v1": {"missed": "1", "report_edits": "0.167"},
    },
}


@pytest.mark.usefixtures("frontend_built")
def test_model_owner_sees_the_four_charts_with_the_numbers_and_they_follow_a_cycle(
    page, live_server, project, scenario, member, artifacts_dir: Path
):
    member("mona", "model_owner")
    log_in(page, live_server, "mona")
    page.goto(f"{live_server.url}/projects/{project.pk}/models/")
    page.wait_for_selector("#models-page[data-state=ready]")
    page.wait_for_selector("#model-charts[data-state=ready][data-loads='1']")
    assert page.locator("#model-charts-unbuilt").count() == 0
    page.locator("#model-charts").scroll_into_view_if_needed()
    assert_charts_drawn(page, CHARTS)
    page.screenshot(path=str(artifacts_dir / "models-charts.png"), full_page=True)

    assert page.evaluate(TABLES) == EXPECTED_TABLES
    charts = page.evaluate(CHART_DATA)
    # (a) The learning curve: x = training labels (a linear axis), the serving v2 drawn larger.
    curve = charts["learning-curve"]
    assert (curve["type"], curve["xScale"]) == ("line", "linear")
    assert curve["datasets"][0]["label"] == "Promotion metric (combined)"
    assert curve["datasets"][0]["data"] == [
        {"x": 4, "y": 0.4},
        {"x": 8, "y": 0.633},
        {"x": 12, "y": 0.9},
    ]
    assert curve["datasets"][0]["pointRadius"] == [3, 7, 3]
    assert curve["datasets"][1]["data"][2] == {"x": 12, "y": None}  # v3 has no mAP@0.5
    assert "v2 · 8 labels · serving" in page.get_attribute(
        "[data-testid=chart-learning-curve]", "aria-label"
    )
    # (b) Per-class metrics of the serving version first.
    per_class = charts["per-class"]
    assert (per_class["type"], per_class["labels"]) == (
        "bar",
        ["Nodule", "Mass", "Pleural effusion"],
    )
    assert [d["label"] for d in per_class["datasets"]] == [
        "Box AP@0.5",
        "Finding AUROC",
        "Report finding F1",
    ]
    assert per_class["datasets"][0]["data"] == [0.6, 0.4, None]
    assert page.text_content("#panel-per-class h2") == "Per-class metrics · v2"
    # (c) The acquisition scores of the open cases, and those with no score yet.
    scores = charts["acquisition-scores"]
    assert scores["labels"][:2] == [f"0{EN_DASH}0.1", f"0.1{EN_DASH}0.2"]
    assert scores["labels"][-1] == "no score"
    assert scores["datasets"][0]["data"] == [1, 1, 0, 1, 0, 0, 0, 0, 0, 2, None]
    assert scores["datasets"][1]["data"][-1] == 2
    assert page.text_content("#panel-acquisition-scores h2") == (
        "Acquisition scores of the 7 open cases · v2"
    )
    # (d) Suggestion usefulness per version, newest first.
    use = charts["suggestion-use"]
    assert use["labels"] == ["v3 · 1 case", "v2 (serving) · 2 cases", "v1 · 1 case"]
    assert [d["data"] for d in use["datasets"]] == [[0, 50, 50], [0, 25, 0], [100, 25, 50]]
    assert [d["data"] for d in charts["corrections"]["datasets"]] == [
        [0, 1, 1],
        [None, 0.333, 0.167],
    ]

    # Another version's per-class metrics: a class the schema no longer has; no report F1.
    page.select_option("#per-class-version", "1")
    page.wait_for_function(
        "() => document.querySelector('#panel-per-class h2').textContent.endsWith('v1')"
    )
    per_class = page.evaluate(CHART_DATA)["per-class"]
    assert per_class["labels"] == ["Nodule", "Mass", "Pleural effusion", "old_finding"]
    assert [d["data"] for d in per_class["datasets"]] == [
        [0.3, 0.1, None, 0.2],
        [0.7, 0.5, None, None],
    ]
    assert page.evaluate(TABLES)["per-class"]["old_finding"] == {"ap_50": "0.2", "auroc": "—"}

    # The numbers as a table, on demand.
    page.click("#panel-suggestion-use .toggle")
    assert page.is_visible("[data-testid=table-suggestion-use]")
    assert not page.is_visible("[data-testid=chart-suggestion-use]")
    page.click("#panel-suggestion-use .toggle")

    # A cycle the page started finishes with v5 (as a worker would): the charts load again,
    # and the picked version stays picked.
    page.click("#retrain")
    page.wait_for_selector("#cycle-status[data-status=queued]")
    cycle = RetrainingCycle.objects.get(project=project)
    v5 = ModelVersion.objects.create(
        project=project, number=5, status="candidate", label_count=16, metrics=V2_METRICS
    )
    RetrainingCycle.objects.filter(pk=cycle.pk).update(
        status="succeeded", stage="done", progress=100, model_version=v5, finished_at=timezone.now()
    )
    page.wait_for_selector("#cycle-status[data-status=succeeded]")
    # Loaded again (at least once more: the page may also reload while it sees the cycle move).
    page.wait_for_function(
        "() => { const c = document.querySelector('#model-charts');"
        " return c.dataset.state === 'ready' && Number(c.dataset.loads) >= 2; }"
    )
    charts = page.evaluate(CHART_DATA)
    assert [p["x"] for p in charts["learning-curve"]["datasets"][0]["data"]] == [4, 8, 12, 16]
    assert page.text_content("#panel-per-class h2") == "Per-class metrics · v1"
    assert page.locator("#per-class-version option").all_text_contents() == [
        "v5",
        "v3",
        "v2 (serving)",
        "v1",
    ]
    assert_charts_drawn(page, CHARTS)
    page.screenshot(path=str(artifacts_dir / "models-charts-after-cycle.png"), full_page=True)

    # The charts show what the API says.
    body = (
        api_client_for(member("lena", "lead"))
        .get(f"/api/projects/{project.pk}/model-dashboard/")
        .json()
    )
    assert [p["labels"] for p in body["learning_curve"]] == [4, 8, 12, 16]


def test_without_the_frontend_build_the_page_says_how_to_build_it(
    client, project, member, monkeypatch
):
    """The page is TypeScript (frontend/src/models) like the other pages: without the build it
    is refused with the command that builds it, as they are, not served half-working."""

    def not_built():
        raise vite.FrontendNotBuilt("The frontend is not built: run `make run`.")

    monkeypatch.setattr(vite, "manifest", not_built)
    client.force_login(member("mona", "model_owner"))
    response = client.get(f"/projects/{project.pk}/models/")
    assert response.status_code == 503
    assert "make run" in response.content.decode()
