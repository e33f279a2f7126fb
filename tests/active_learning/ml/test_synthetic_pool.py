"""Synthetic pools with VinDr-CXR prevalence and faint, small lesions (``prevalence`` and
``difficulty`` of :func:`generate_case`). Pure Python: no Django, no database."""

from __future__ import annotations

import math

import numpy as np
import pytest

from active_learning.ml.box_priors import load_priors
from active_learning.ml.synthetic import FINDING_CLASSES, generate_case


def test_vindr_prevalence_follows_the_real_image_level_rates() -> None:
    prevalence = load_priors()["prevalence"]
    count = 1500
    cases = [generate_case(11, i, 32, prevalence="vindr") for i in range(count)]
    for name in FINDING_CLASSES:
        rate = prevalence["rates"][name]
        seen = sum(case.findings[name] for case in cases) / count
        # four binomial standard errors (plus a floor for the rarest class)
        assert abs(seen - rate) <= 4 * math.sqrt(rate * (1 - rate) / count) + 0.002, name
    none = sum(not any(case.findings.values()) for case in cases) / count
    assert 0.72 <= none <= 0.81  # VinDr: 70.7 % all-normal plus 6 % with other findings only
    assert prevalence["no_finding_rate"] == pytest.approx(0.707, abs=0.01)
    # real co-occurrence: effusion is far more common with cardiomegaly than without it
    with_heart = [c.findings["effusion"] for c in cases if c.findings["cardiomegaly"]]
    without = [c.findings["effusion"] for c in cases if not c.findings["cardiomegaly"]]
    assert np.mean(with_heart) > 2 * np.mean(without)


def test_difficulty_makes_the_same_lesions_fainter_and_smaller() -> None:
    fainter, compared = 0, 0
    for index in range(400):
        easy = generate_case(21, index, 128)
        if not (easy.findings["nodule"] or easy.findings["mass"]):
            continue
        hard = generate_case(21, index, 128, difficulty=1.0)
        assert hard.findings == easy.findings  # the same case, only its lesions changed
        assert set(easy.lesion_contrast.values()) == {(1.0, 1.0)}
        for name in ("nodule", "mass"):
            if not easy.findings[name]:
                continue
            contrast, size = hard.lesion_contrast[name]
            assert 0.25 <= contrast <= 1.0 and 0.5 <= size <= 1.0
            box = next(b for b in easy.boxes if b.finding == name)
            small = next(b for b in hard.boxes if b.finding == name)
            assert small.width * small.height <= box.width * box.height + 1e-6
            rows = slice(int(box.y), int(box.y + box.height) + 1)
            columns = slice(int(box.x), int(box.x + box.width) + 1)
            brighter = easy.pixels[rows, columns].astype(float) - hard.pixels[rows, columns]
            compared += 1
            fainter += brighter.mean() > 0
        if compared >= 12:
            break
    assert compared >= 12
    assert fainter == compared


def test_default_options_are_the_earlier_cases_and_bad_options_are_refused() -> None:
    plain = generate_case(5, 3, 64)
    explicit = generate_case(5, 3, 64, prevalence="balanced", difficulty=0.0)
    assert np.array_equal(plain.pixels, explicit.pixels) and plain.boxes == explicit.boxes
    with pytest.raises(ValueError, match="prevalence"):
        generate_case(5, 3, 64, prevalence="uniform")
    with pytest.raises(ValueError, match="difficulty"):
        generate_case(5, 3, 64, difficulty=1.5)
