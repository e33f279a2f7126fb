"""Pixel synthesis for the synthetic chest radiographs (used by ``synthetic``; numpy only).

Everything is drawn on a square grid in normalised coordinates (0..1, origin top-left, the
patient's right on the image's left, as a PA radiograph is displayed) so a case looks the same at
any ``size``. The image is built as a brightness map ``A`` (float32, 0 = air/black, 1 = bone/white):
body soft tissue, two dark lung fields, mediastinum, heart, spine, ribs, clavicles and vessel
markings, then lesions. ``to_stored_values`` turns it into 12-bit MONOCHROME2 stored values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Grid = tuple[np.ndarray, np.ndarray]  # x, y: float32 arrays (size, size) of pixel centres in 0..1
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in normalised image coordinates


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.tanh(0.5 * z)


def grid(size: int) -> Grid:
    """Pixel-centre coordinates in 0..1 for a ``size`` x ``size`` image."""
    axis = ((np.arange(size, dtype=np.float32) + 0.5) / size).astype(np.float32)
    x, y = np.meshgrid(axis, axis)
    return x, y


def gaussian_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Isotropic Gaussian blur by FFT (periodic edges; the image borders are air anyway)."""
    if sigma_px <= 0:
        return image
    rows, cols = image.shape
    fy = np.fft.fftfreq(rows)[:, None]
    fx = np.fft.rfftfreq(cols)[None, :]
    kernel = np.exp(-2 * (np.pi * sigma_px) ** 2 * (fx**2 + fy**2))
    return np.fft.irfft2(np.fft.rfft2(image) * kernel, s=image.shape).astype(np.float32)


@dataclass(frozen=True)
class Anatomy:
    """Per-case anatomy in normalised coordinates; ``u`` is the distance from the midline."""

    mid: float  # x of the midline
    lung_top: float  # y of the apices
    lung_width: float  # half-width scale of each lung (u)
    dome_right: float  # y of the right hemidiaphragm dome (image left)
    dome_left: float  # y of the left hemidiaphragm dome (image right)
    heart_cx: float
    heart_cy: float
    heart_rx: float
    heart_ry: float
    body_half_width: float

    def dome(self, side: int, u: np.ndarray | float) -> np.ndarray | float:
        """y of the diaphragm under lung ``side`` (-1 image left/patient right, +1 image right)."""
        top = self.dome_right if side < 0 else self.dome_left
        return top + 2.16 * (np.asarray(u) - 1.25 * self.lung_width) ** 2

    def lung_shape(self, side: int, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed closeness (>0 inside) of the lung outline before the diaphragm cuts it."""
        a = self.lung_width
        uc, vc = 1.3 * a, self.lung_top + 0.32
        b = np.where(y < vc, vc - self.lung_top, 0.6)
        return 1 - ((u - uc) / a) ** 2 - ((y - vc) / b) ** 2

    def lung(self, side: int, x: np.ndarray, y: np.ndarray, shrink: float = 1.0) -> np.ndarray:
        """Soft mask (0..1) of lung ``side``; ``shrink`` < 1 collapses it towards the hilum."""
        u = side * (x - self.mid)
        if shrink != 1.0:
            hu, hv = 0.09, self.lung_top + 0.33
            u, y = hu + (u - hu) / shrink, hv + (y - hv) / shrink
        inside = _sigmoid(self.lung_shape(side, u, y) / 0.03)
        below_dome = _sigmoid((self.dome(side, u) - y) / 0.005)
        lateral_of_mediastinum = _sigmoid((u - 0.045) / 0.008)
        return (inside * below_dome * lateral_of_mediastinum).astype(np.float32)

    def heart(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Soft mask of the cardiac silhouette (an ellipse resting on the diaphragm)."""
        d = ((x - self.heart_cx) / self.heart_rx) ** 2 + ((y - self.heart_cy) / self.heart_ry) ** 2
        return (_sigmoid((1 - d) / 0.06) * _sigmoid((self.dome_left + 0.03 - y) / 0.01)).astype(
            np.float32
        )


def random_anatomy(rng: np.random.Generator) -> Anatomy:
    """Anatomy with case-to-case variation of about the size seen between adults."""
    mid = 0.5 + rng.normal(0, 0.008)
    lung_top = 0.11 + rng.normal(0, 0.01)
    dome_right = 0.66 + rng.normal(0, 0.02)
    return Anatomy(
        mid=mid,
        lung_top=lung_top,
        lung_width=0.16 + rng.normal(0, 0.006),
        dome_right=dome_right,
        dome_left=dome_right + 0.025 + rng.normal(0, 0.01),
        heart_cx=mid + 0.05 + rng.normal(0, 0.008),
        heart_cy=dome_right + rng.normal(0, 0.01),
        heart_rx=0.15 + rng.normal(0, 0.008),
        heart_ry=0.16 + rng.normal(0, 0.006),
        body_half_width=0.45 + rng.normal(0, 0.01),
    )


def lung_markings(rng: np.random.Generator, g: Grid, hila: list[tuple[float, float]]) -> np.ndarray:
    """Vessel markings: short wavy streaks radiating from each hilum, tapering to the periphery.

    Noise on a polar (angle, radius) grid around each hilum is smoothed much more along the radius
    than across it, and its angle coordinate is warped by slow noise so the streaks bend; returns
    0..1, float32 (size, size).
    """
    x, y = g
    angles, radii = 512, 64
    fa = np.fft.fftfreq(angles)[:, None] / 0.2
    fr = np.fft.rfftfreq(radii)[None, :] / 0.08
    out = np.zeros_like(x)
    for hx, hy in hila:
        noise = np.fft.irfft2(
            np.fft.rfft2(rng.normal(size=(angles, radii))) * np.exp(-(fa**2) - fr**2),
            s=(angles, radii),
        )
        noise = np.maximum(noise / (noise.std() + 1e-6) - 0.8, 0)
        radius = np.hypot(x - hx, y - hy)
        angle = np.arctan2(y - hy, x - hx) + 0.12 * np.sin(radius * 40 + rng.uniform(0, 6.3))
        ai = ((angle + np.pi) / (2 * np.pi) * angles).astype(np.int32) % angles
        ri = np.clip(radius / 0.45 * (radii - 1), 0, radii - 1).astype(np.int32)
        out = np.maximum(out, noise[ai, ri] * np.exp(-radius / 0.22))
    return np.clip(out, 0, 1.5).astype(np.float32)


def draw_anatomy(
    rng: np.random.Generator, anatomy: Anatomy, g: Grid
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normal chest: returns (brightness A, lung mask, vessel markings), float32 (size, size)."""
    x, y = g
    a = anatomy
    dx = x - a.mid
    u = np.abs(dx)
    half = a.body_half_width * np.clip(0.25 + 6 * (y - 0.02), 0.25, 1.0) ** 0.5
    body = _sigmoid((half - u) / 0.008) * _sigmoid((y - 0.0) / 0.01)
    image = body * (0.5 + 0.12 * (1 - (u / a.body_half_width) ** 2).clip(0, 1))

    lung = np.maximum(a.lung(-1, x, y), a.lung(+1, x, y))
    heart = a.heart(x, y)
    # lungs look darkest centrally and towards the apices; chest wall and breasts overlap the rest
    gradient = 0.8 + 0.1 * (1 - ((y - a.lung_top) / 0.6).clip(0, 1)) + 0.1 * (1 - (u / 0.4) ** 4)
    image -= 0.34 * lung * gradient * (1 - 0.9 * heart)

    mediastinum = _sigmoid((0.055 + 0.02 * (y > 0.2) - u) / 0.008) * _sigmoid(
        (a.dome_left - y) / 0.01
    )
    knob = _sigmoid((1 - ((x - a.mid - 0.07) ** 2 + (y - 0.27) ** 2) / 0.03**2) / 0.2)
    image += 0.1 * np.maximum(mediastinum, knob)
    trachea = _sigmoid((0.012 - np.abs(dx)) / 0.003) * _sigmoid((a.lung_top + 0.2 - y) / 0.01)
    image -= 0.08 * trachea
    abdomen = _sigmoid((y - np.where(dx < 0, a.dome_right, a.dome_left) - 0.01) / 0.01)
    image += 0.12 * abdomen * body

    vertebra = 0.5 + 0.5 * np.cos(2 * np.pi * y / 0.045)
    image += (0.06 + 0.03 * vertebra) * _sigmoid((0.028 - u) / 0.004)

    # Posterior ribs: every pixel gets a continuous rib index along the rib curves, so all ten
    # ribs cost a handful of array operations instead of a loop over ribs.
    starts = a.lung_top + 0.005 + np.arange(11) * (0.05 + 0.0025 * np.arange(11))
    along = y + 0.15 * u - 1.1 * u**2
    index = np.interp(along, starts, np.arange(11.0))
    spacing = np.interp(along, starts[:-1], np.diff(starts))
    offset = np.abs(index - np.round(index)) * spacing
    thorax = (u > 0.02) * _sigmoid((a.dome_left + 0.08 - y) / 0.02) * (along > starts[0] - 0.02)
    ribs = _sigmoid((0.011 - offset) / 0.003) * thorax * (index < 10.4)
    clavicle = 0.14 - 0.16 * u + 0.2 * u**2
    ribs += 0.8 * _sigmoid((0.012 - np.abs(y - clavicle)) / 0.003) * (u > 0.02) * (u < 0.3)
    image += 0.07 * ribs * body

    hila = [(a.mid - 0.08, a.lung_top + 0.33), (a.mid + 0.08, a.lung_top + 0.31)]
    vessels = lung_markings(rng, g, hila)
    return image.astype(np.float32), lung.astype(np.float32), vessels


def mask_rect(mask: np.ndarray, threshold: float = 0.5) -> Rect | None:
    """Normalised bounding rectangle (x0, y0, x1, y1) of ``mask >= threshold``; None if empty."""
    rows = np.flatnonzero((mask >= threshold).any(axis=1))
    cols = np.flatnonzero((mask >= threshold).any(axis=0))
    if rows.size == 0:
        return None
    size_y, size_x = mask.shape
    return cols[0] / size_x, rows[0] / size_y, (cols[-1] + 1) / size_x, (rows[-1] + 1) / size_y


def to_stored_values(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Blur, add quantum noise and map brightness to 12-bit stored values (uint16, 0..4095)."""
    size = image.shape[0]
    image = gaussian_blur(image, 0.0015 * size)
    image = image + rng.normal(0, 0.012, image.shape).astype(np.float32)
    low, high = 0.04 + rng.normal(0, 0.01), 0.92 + rng.normal(0, 0.02)
    stored = (low + image.clip(0, 1.05) * (high - low)) * 4095
    return stored.clip(0, 4095).astype(np.uint16)


def band_noise(rng: np.random.Generator, size: int, cycles: float, width: float) -> np.ndarray:
    """Unit-variance noise band-passed around ``cycles`` per image width, float32 (size, size)."""
    f = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :]) * size
    spectrum = np.fft.rfft2(rng.normal(size=(size, size))) * np.exp(-(((f - cycles) / width) ** 2))
    noise = np.fft.irfft2(spectrum, s=(size, size))
    return (noise / (noise.std() + 1e-9)).astype(np.float32)


def nodule(g: Grid, cx: float, cy: float, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Round, well-defined opacity: returns (outline mask, opacity profile), 0..1 float32."""
    x, y = g
    d = np.hypot(x - cx, y - cy) / radius
    mask = _sigmoid((1 - d) / 0.08)
    return mask, mask * (0.65 + 0.35 * np.sqrt(np.clip(1 - d**2, 0, 1)))


def mass(
    rng: np.random.Generator, g: Grid, cx: float, cy: float, rx: float, ry: float
) -> tuple[np.ndarray, np.ndarray]:
    """Larger lobulated, slightly spiculated opacity: (outline mask, opacity profile)."""
    x, y = g
    theta = np.arctan2((y - cy) / ry, (x - cx) / rx)
    d = np.hypot((x - cx) / rx, (y - cy) / ry)
    phase = rng.uniform(0, 2 * np.pi, 4)
    radius = (
        0.86
        + 0.1 * np.sin(3 * theta + phase[0])
        + 0.06 * np.sin(5 * theta + phase[1])
        + 0.04 * np.sin(17 * theta + phase[2]) ** 8
    )
    mask = _sigmoid((radius - d) / 0.05)
    return mask, mask * (0.75 + 0.25 * np.clip(1 - d, 0, 1))


def consolidation(
    rng: np.random.Generator, g: Grid, cx: float, cy: float, rx: float, ry: float, lung: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Patchy airspace opacity confined to the lung, crossed by dark air bronchograms."""
    x, y = g
    size = x.shape[0]
    d = np.hypot((x - cx) / rx, (y - cy) / ry)
    envelope = _sigmoid((1 - d) / 0.12)
    patches = _sigmoid((band_noise(rng, size, 10.0, 6.0) + 0.8) / 0.4)
    bronchi = np.exp(-((band_noise(rng, size, 5.0, 3.0) / 0.12) ** 2))
    opacity = envelope * patches * lung
    mask = (envelope * lung).astype(np.float32)
    return mask, opacity * (1 - 0.4 * bronchi * _sigmoid((0.8 - d) / 0.1))


def effusion(a: Anatomy, g: Grid, side: int, height: float, width: float) -> np.ndarray:
    """Dependent opacity in the costophrenic angle with a meniscus rising laterally (0..1)."""
    x, y = g
    u = side * (x - a.mid)
    lateral = 2.3 * a.lung_width
    angle_y = float(a.dome(side, lateral))
    surface = angle_y - height * (0.45 + 0.75 * np.clip(u / lateral, 0, 1) ** 2)
    inside = _sigmoid(a.lung_shape(side, u, y) / 0.03) * _sigmoid((u - 0.045) / 0.008)
    below = _sigmoid((y - surface) / 0.006) * _sigmoid((angle_y + 0.01 - y) / 0.006)
    extent = _sigmoid((u - (lateral - width)) / 0.015)
    return (inside * below * extent).astype(np.float32)


def pneumothorax(
    a: Anatomy, g: Grid, side: int, shrink: float, depth: float
) -> tuple[np.ndarray, np.ndarray]:
    """Apical/lateral air rim without lung markings: (lucent region, visceral pleural line)."""
    x, y = g
    lung = a.lung(side, x, y)
    collapsed = a.lung(side, x, y, shrink=shrink)
    upper = _sigmoid((a.lung_top + depth - y) / 0.02)
    region = np.clip(lung - collapsed, 0, 1) * upper
    line = np.exp(-(((collapsed - 0.5) / 0.2) ** 2)) * lung * upper
    return region.astype(np.float32), line.astype(np.float32)
