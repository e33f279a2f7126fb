"""The rendered-PNG cache is bounded and evicts the least recently used files (issue 15,
finding 10): every distinct window centre is a new file, so without a bound one annotator
could fill the disk."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from annotations.dicom import pixels
from annotations.models import Instance


def _producer(size: int, calls: list[int]):
    def produce() -> bytes:
        calls.append(size)
        return bytes([len(calls) % 256]) * size

    return produce


def test_the_cache_never_grows_past_its_bound_and_keeps_what_was_used_last(tmp_path: Path):
    bound = 10_000
    calls: list[int] = []
    for centre in range(40):
        pixels.cached_render(
            tmp_path, ("sha", 0, centre, 400), _producer(1_000, calls), max_bytes=bound
        )
        assert pixels.cache_size(tmp_path) <= bound
        if centre == 0:
            time.sleep(0.02)  # file times have a coarse clock: keep the first one clearly older
        if centre >= 1:
            # Centre 0 is looked at again after each new one: it stays the most recently used.
            time.sleep(0.005)
            pixels.cached_render(
                tmp_path, ("sha", 0, 0, 400), _producer(1_000, calls), max_bytes=bound
            )
    assert calls.count(1_000) == 40  # centre 0 was produced once and always read back
    assert pixels.cache_size(tmp_path) == bound
    # The oldest unused centres are the ones gone: centre 1 had to be produced again.
    pixels.cached_render(tmp_path, ("sha", 0, 1, 400), _producer(1_000, calls), max_bytes=bound)
    assert len(calls) == 41


def test_an_output_larger_than_the_bound_is_served_but_not_stored(tmp_path: Path):
    content = pixels.cached_render(tmp_path, ("big",), lambda: b"x" * 5_000, max_bytes=4_000)
    assert content == b"x" * 5_000
    assert pixels.cache_size(tmp_path) == 0


@pytest.mark.django_db
def test_many_window_centres_through_the_api_never_grow_the_cache_past_the_setting(
    member, api_for, cases, settings
):
    lead = api_for(member("lena", "lead"))
    instance = Instance.objects.first()
    url = f"/api/instances/{instance.pk}/render.png"
    first = lead.get(url, {"window_center": 0, "window_width": 400})
    assert first.status_code == 200
    settings.MEDLOOP_RENDER_CACHE_MAX_BYTES = 3 * len(first.content)
    renders = Path(django_settings.STORAGE_DIR) / "renders"
    for centre in range(1, 25):
        response = lead.get(url, {"window_center": centre * 7, "window_width": 400})
        assert response.status_code == 200
        assert pixels.cache_size(renders) <= settings.MEDLOOP_RENDER_CACHE_MAX_BYTES
    assert pixels.cache_size(renders) > 0
