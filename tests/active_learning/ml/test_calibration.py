"""One calibration hold-out for every model kind (active_learning.ml.calibration)."""

from __future__ import annotations

import hashlib

from active_learning.ml import calibration, local_checkpoint
from active_learning.ml.builtin import model as builtin_model


def test_both_model_kinds_hold_out_the_same_cases() -> None:
    assert builtin_model.is_calibration_case is calibration.is_calibration_case
    assert local_checkpoint.is_calibration_case is calibration.is_calibration_case


def test_the_hold_out_is_bucket_zero_of_the_whole_digest() -> None:
    ids = [str(n) for n in range(2000)] + [f"case-{n}" for n in range(2000)]
    for case_id in ids:
        whole = int(hashlib.sha256(case_id.encode()).hexdigest(), 16) % 10 == 0
        assert calibration.is_calibration_case(case_id) is whole
    # The first byte modulo 10 (the builtin kind's old rule) favours buckets 0-5: it disagrees.
    first_byte = [hashlib.sha256(i.encode()).digest()[0] % 10 == 0 for i in ids]
    assert first_byte != [calibration.is_calibration_case(i) for i in ids]
    held_out = sum(calibration.is_calibration_case(i) for i in ids) / len(ids)
    assert 0.08 < held_out < 0.12
