"""The 3D CT detector's explanation (issue 21): a per-voxel Grad-CAM heat volume on the series'
stack grid, hotter inside a synthetic nodule than far from it once the detector has trained for
a few steps; the version's network is left as it was."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from active_learning.ml import synthetic_ct
from active_learning.ml.ct_detector import CTDetector
from active_learning.ml.ct_detector.explain import to_stack_grid
from active_learning.ml.ct_detector.preprocess import prepare
from active_learning.ml.interface import ModelInputError, UncertaintyOptions
from active_learning.ml.volumes import LabelledVolume, VolumeInput
from tests.support.ct_volumes import SLICES, TINY_CT, whole_nodule_series


@pytest.fixture(scope="module")
def trained() -> tuple[CTDetector, list[LabelledVolume]]:
    """Trained on four volumes; the last two of six are unseen."""
    volumes = [
        synthetic_ct.labelled_volume(s, case_id=f"ct{s.seed}")
        for s in whole_nodule_series(6, start=0)
    ]
    model = CTDetector(dataclasses.replace(TINY_CT))
    model.train(lambda: iter(volumes[:4]))
    return model, volumes


def _inside_and_far(heat: np.ndarray, volume: LabelledVolume) -> tuple[float, float]:
    """Mean heat inside the nodule's box, and beyond twice its size from its centre."""
    (box,) = volume.boxes
    low = np.array([box.z, box.y, box.x])
    high = low + np.array([box.depth, box.height, box.width])
    inside = np.zeros(heat.shape, dtype=bool)
    z0, y0, x0 = np.floor(low).astype(int)
    z1, y1, x1 = np.ceil(high).astype(int)
    inside[z0:z1, y0:y1, x0:x1] = True
    distance = np.linalg.norm(
        np.indices(heat.shape) - ((low + high) / 2)[:, None, None, None], axis=0
    )
    far = distance > 2 * float((high - low).max())
    assert inside.any() and far.sum() > 1000
    return float(heat[inside].mean()), float(heat[far].mean())


def test_the_heat_is_higher_inside_the_nodule_than_far_from_it(trained):
    model, volumes = trained
    ratios = []
    for volume in volumes:
        heat = model.explain(volume, "nodule")
        assert heat.shape == volume.image.shape == (SLICES, 40, 40)
        assert heat.dtype == np.float32 and heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
        inside, far = _inside_and_far(heat, volume)
        assert inside > far, (volume.case_id, inside, far)
        ratios.append(inside / max(far, 1e-6))
    # Seen and unseen volumes alike: most by a wide margin.
    assert float(np.median(ratios)) > 3.0, ratios


def test_the_heat_volume_is_on_the_stack_grid_whatever_the_spacing(trained):
    model, volumes = trained
    # The same pixels read as 2 mm slices of 3.1 mm pixels: the model's 2.5 mm grid differs
    # from the stack's on every axis, and the heat comes back on the stack's.
    volume = volumes[0]
    case = VolumeInput(case_id="aniso", image=volume.image[:20, :, :36],
                       voxel_spacing_mm=(2.0, 3.1, 3.1))  # fmt: skip
    heat = model.explain(case, "nodule")
    assert heat.shape == (20, 40, 36)
    assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    # The prepared image brought back by the same mapping is the windowed stack.
    prepared = prepare(case, model.config)
    back = to_stack_grid(prepared.image[0].numpy(), prepared.factor, case.image.shape)
    windowed = np.clip((case.image - (-1000.0)) / 1500.0, 0, 1)
    windowed = windowed / windowed.max()
    assert float(np.corrcoef(back.ravel(), windowed.ravel())[0, 1]) > 0.95


def test_explaining_leaves_the_network_as_it_was(trained):
    model, volumes = trained
    options = UncertaintyOptions(box_stability=False)
    before = [b.score for b in model.predict(volumes[:1], uncertainty=options)[0].candidates]
    model.explain(volumes[0], "nodule")
    hooks = [m for m in model.detector.modules() if m._forward_hooks or m._backward_hooks]
    assert hooks == []
    after = [b.score for b in model.predict(volumes[:1], uncertainty=options)[0].candidates]
    assert after == pytest.approx(before)


def test_an_unknown_finding_or_an_untrained_model_is_refused(trained):
    model, volumes = trained
    with pytest.raises(ModelInputError, match="unknown finding 'mass'"):
        model.explain(volumes[0], "mass")
    with pytest.raises(RuntimeError, match="not been trained"):
        CTDetector(dataclasses.replace(TINY_CT)).explain(volumes[0], "nodule")
