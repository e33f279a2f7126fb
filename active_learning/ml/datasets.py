"""Case sources for training and evaluation: the synthetic benchmark as a stream of
:class:`~active_learning.ml.interface.LabelledCase` (each case generated when it is reached,
so a pass over thousands of cases holds one batch in memory)."""

from __future__ import annotations

from collections.abc import Iterator

from active_learning.ml.interface import Box, CaseSource, LabelledCase, LabValue
from active_learning.ml.synthetic import SyntheticCase, generate_case


def labelled_from_synthetic(case: SyntheticCase, case_id: str) -> LabelledCase:
    """The model's view of a synthetic case: pixels, clinical text, labs, and its truth."""
    return LabelledCase(
        case_id=case_id,
        image=case.pixels,
        indication=case.indication,
        history=case.history,
        labs=tuple(
            LabValue(
                code=lab["code"],
                value=lab["value"],
                low=lab.get("reference_low"),
                high=lab.get("reference_high"),
                unit=lab.get("unit", ""),
                name=lab.get("name", ""),
            )
            for lab in case.labs
        ),
        pixel_spacing_mm=case.pixel_spacing_mm,
        boxes=tuple(Box(b.finding, b.x, b.y, b.width, b.height) for b in case.boxes),
        findings=dict(case.findings),
        report=dict(case.report),
    )


def synthetic_source(seed: int, start: int, count: int, size: int = 512) -> CaseSource:
    """Cases ``start .. start + count - 1`` of the synthetic set ``seed``, re-iterable."""

    def stream() -> Iterator[LabelledCase]:
        for index in range(start, start + count):
            yield labelled_from_synthetic(generate_case(seed, index, size), f"syn-{seed}-{index}")

    return stream
