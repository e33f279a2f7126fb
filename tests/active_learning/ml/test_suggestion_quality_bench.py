"""bench/suggestion_quality.py ends with one JSON object holding the figures issue 14 asks for
(run here at its --tiny size: a smoke run of the real pipeline, not a figure)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

REQUIRED = {
    "precision_shown",
    "false_boxes_per_normal_image",
    "recall_shown",
    "recall_shown_per_class",
    "map50",
    "froc",
    "degenerate_drafts",
    "report_edit_distance",
    "kept_share",
    "kept_or_edited_share",
    "prefill_ppv",
    "prefill_wrong_per_case",
    "prefill_coverage",
    "prefill_without_bound",
    "seeds",
    "steps",
    "seconds",
}


def test_the_quick_bench_prints_its_figures_as_json_on_the_last_line():
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "suggestion_quality.py"), "--tiny", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(figures) >= REQUIRED, REQUIRED - set(figures)
    assert figures["steps"] == 3 and figures["test_cases"] == 8
    assert figures["seeds"] == {"model": 0, "data": 14}
    assert 0 <= figures["degenerate_drafts"] <= figures["test_cases"]
    assert figures["report_edit_distance"] > 0.5  # after 3 steps the drafts are far from it
    assert set(figures["recall_shown_per_class"]) == {
        "nodule", "mass", "consolidation", "effusion", "pneumothorax", "cardiomegaly"
    }  # fmt: skip
    assert set(figures["froc"]) >= {"sensitivity_at_0.5_fp", "sensitivity_at_4_fp"}
    # Eight validation cases cannot make a finding reliable: nothing is prefilled, so there is
    # no predictive value to report (None, not a made-up 0 or 1).
    assert figures["prefill_coverage"] == 0 and figures["prefill_ppv"] is None
    assert figures["prefill_wrong_per_case"] == 0
