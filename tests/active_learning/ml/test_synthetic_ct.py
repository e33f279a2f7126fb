"""The synthetic chest CT series (active_learning.ml.synthetic_ct): Hounsfield units survive the
round trip through DICOM, the geometry is a scanner's, nodules sit in a lung with LIDC-like
diameters."""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.pixels import apply_rescale

from active_learning.ml import synthetic_ct


def test_written_slices_read_back_in_hounsfield_units_with_their_geometry(tmp_path):
    series = synthetic_ct.generate_series(seed=2, slices=6, size=64)
    paths = synthetic_ct.write_series(synthetic_ct.slice_datasets(series), tmp_path)
    assert len(paths) == 6
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        assert ds.Modality == "CT" and ds.InstanceNumber == k + 1
        assert np.array_equal(apply_rescale(ds.pixel_array, ds).astype(np.int16), series.hu[k])
        assert [float(v) for v in ds.ImagePositionPatient] == [
            -175.0,
            -175.0,
            series.origin_mm[2] + 2.5 * k,
        ]
        assert float(ds.PixelSpacing[0]) == float(ds.PixelSpacing[1]) == 350 / 64
    lung = series.hu[3][32, 18]  # the middle of the right lung on a middle slice
    air, spine = series.hu[3][2, 2], series.hu[3][32 + 15, 32]
    assert lung < -700 and air < -900 and spine > 500


def test_nodules_are_in_a_lung_and_mostly_3_to_10_mm():
    diameters = []
    for seed in range(40):
        series = synthetic_ct.generate_series(seed=seed, slices=20, size=64, nodules=2)
        for nodule in series.nodules:
            x, y, z = nodule.center_mm
            col = round((x - series.origin_mm[0]) / series.pixel_spacing_mm)
            row = round((y - series.origin_mm[1]) / series.pixel_spacing_mm)
            k = round((z - series.origin_mm[2]) / series.slice_spacing_mm)
            assert series.hu[k][row, col] > -200  # the nodule itself, not the air of the lung
            diameters.append(nodule.diameter_mm)
    diameters_mm = np.array(diameters)
    assert ((diameters_mm >= 3) & (diameters_mm <= 30)).all()
    assert 0.7 < ((diameters_mm >= 3) & (diameters_mm <= 10)).mean() < 0.99
