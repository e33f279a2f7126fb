"""3D model suggestions (issue 21, part 3): the stored shape a 3D detector fills
(annotations.services.volume_boxes.suggestion_box: a 3D box's series, slice range and patient
mm, shown first on its middle slice), refused for ranges a box could not have, and counted as
kept at submission by 3D IoU over its slices, not by its outline on one slice."""

from __future__ import annotations

import pytest

from annotations.models import Box
from annotations.series_stacks import stack_of
from annotations.services import annotate, shown_suggestions, volume_boxes
from annotations.services.errors import InvalidInput
from tests.annotations.test_volume_boxes import _ingest

pytestmark = pytest.mark.django_db


def _suggest(series, box_id: str, slices: tuple[int, int], x=10, y=12, width=8, height=6):
    return volume_boxes.suggestion_box(
        box_id=box_id, series_id=series.pk, x=x, y=y, width=width, height=height,
        slices=slices, finding="nodule", score=0.9,
    )  # fmt: skip


def test_a_3d_suggestion_is_stored_as_a_3d_box_is(project, member, tmp_path):
    _, case, series = _ingest(project, tmp_path)
    order = stack_of(series).instance_ids
    stored = _suggest(series, "s0", (3, 7), 10, 12, 8, 6)
    # Shown first on the middle slice of 3..7; the same series, range and patient mm as a
    # box an annotator draws there over the same slices.
    assert stored["instance_id"] == order[4] and stored["frame"] == 1
    assert (stored["series_id"], stored["slices"]) == (series.pk, [3, 7])
    user = member("alice", "annotator")
    annotation = annotate.start_annotation(case=case, annotator=user)
    annotate.save_draft(
        annotation=annotation,
        actor=user,
        expected_version=annotation.version,
        boxes=[annotate.BoxInput(order[4], 10, 12, 8, 6, "nodule", slices=(3, 7))],
    )
    assert stored["patient_mm"] == Box.objects.get(annotation=annotation).patient_mm


def test_a_3d_suggestion_outside_its_series_is_refused_naming_it(project, tmp_path):
    _, _, series = _ingest(project, tmp_path)
    with pytest.raises(InvalidInput, match=r"suggestion box s9: slices 10\.\.14 lie outside"):
        _suggest(series, "s9", (10, 14), 1, 1, 4, 4)


def test_gapped_series_takes_no_3d_suggestion(project, tmp_path):
    _, _, series = _ingest(project, tmp_path, drop=(5,))
    with pytest.raises(InvalidInput, match="is not a regular volume"):
        _suggest(series, "s0", (2, 4), 1, 1, 4, 4)


def test_a_shown_3d_suggestion_counts_as_kept_by_3d_iou(project, member, tmp_path):
    """The suggestion covers slices 3..7. Alice keeps its outline over 5..12: 3 shared slices of
    5 + 8 - 3 = 10, IoU 0.3, not kept (its outline alone would match exactly). Bob's 3..8
    shares 5 of 6: kept."""
    _, case, series = _ingest(project, tmp_path)
    order = stack_of(series).instance_ids
    shown = _suggest(series, "s0", (3, 7), 10, 12, 8, 6)

    def read(name: str, slices: tuple[int, int]) -> float | None:
        user = member(name, "annotator")
        annotation = annotate.start_annotation(case=case, annotator=user)
        shown_suggestions.record_shown(
            annotation=annotation,
            model_version_pk=1,
            model_version_number=1,
            suggestion_pk=None,
            boxes=[shown],
            findings_prefilled={},
            finding_probabilities={},
            report_draft={},
        )
        annotate.submit(
            annotation=annotation,
            actor=user,
            expected_version=annotation.version,
            findings={"nodule": "present"},
            report={"findings": "Nodule.", "impression": ""},
            boxes=[
                annotate.BoxInput(
                    order[4],
                    10,
                    12,
                    8,
                    6,
                    "nodule",
                    origin="suggested_edited",
                    suggestion_box_id="s0",
                    slices=slices,
                )
            ],
        )
        annotation.shown_suggestion.refresh_from_db()
        return annotation.shown_suggestion.boxes_kept_fraction

    assert read("alice", (5, 12)) == 0.0
    assert read("bob", (3, 8)) == 1.0
