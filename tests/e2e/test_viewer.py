"""The DICOM viewer (frontend/src/viewer, Cornerstone3D) in Chromium, hosted by its dev harness
page from the built bundle: it renders MedLoop's served DICOM, windows it on the full bit depth,
draws and edits boxes, scrolls frames, and is timed cold and prefetched."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from annotations.models import Case, Instance
from annotations.services import ingest
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HARNESS = "/static/frontend/dist/src/dev/viewer-harness.html"

# Statistics of the canvas inside a client-space rectangle (the image, not the letterbox).
REGION_STATS = """([left, top, right, bottom]) => {
  const canvas = document.querySelector('#viewer canvas');
  const box = canvas.getBoundingClientRect();
  const sx = canvas.width / box.width, sy = canvas.height / box.height;
  const x0 = Math.round((left - box.left) * sx), y0 = Math.round((top - box.top) * sy);
  const w = Math.round((right - left) * sx), h = Math.round((bottom - top) * sy);
  const data = canvas.getContext('2d').getImageData(x0, y0, w, h).data;
  const grid = new Array(64).fill(0), counts = new Array(64).fill(0);
  let sum = 0, sum2 = 0, n = 0;
  for (let y = 0; y < h; y += 2) for (let x = 0; x < w; x += 2) {
    const i = (y * w + x) * 4, v = (data[i] + data[i + 1] + data[i + 2]) / 3;
    sum += v; sum2 += v * v; n++;
    const g = Math.floor(y * 8 / h) * 8 + Math.floor(x * 8 / w); grid[g] += v; counts[g]++;
  }
  const mean = sum / n;
  return { mean, std: Math.sqrt(Math.max(0, sum2 / n - mean * mean)),
           grid: grid.map((g, i) => g / Math.max(1, counts[i])) };
}"""
TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def _instance_of(case: Case) -> Instance:
    return Instance.objects.filter(series__study__case=case).get()


def _image(instance: Instance) -> dict:
    return {
        "instanceId": instance.pk,
        "url": f"/api/instances/{instance.pk}/file/",
        "frames": instance.number_of_frames,
        "rows": instance.rows,
        "columns": instance.columns,
        "label": f"#{instance.pk}",
    }


def _open_harness(page, live_server, instances: list[Instance]) -> list[str]:
    """Opens the harness on ``instances``; returns the list page errors are collected into."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    ids = ",".join(f"{i.pk}x{i.number_of_frames}" for i in instances)
    page.goto(f"{live_server.url}{HARNESS}?instances={ids}")
    page.wait_for_function("() => window.harness !== undefined")
    page.evaluate("window.harness.ready.then(() => true, () => false)")
    assert page.evaluate("window.harness.error") is None
    if instances:
        page.wait_for_function("() => window.harness.events.rendered.length > 0")
    page.evaluate(TWO_FRAMES)
    return errors


def _image_rect(page, rows: int, columns: int) -> list[float]:
    left, top = page.evaluate("window.harness.imageToClient(0, 0)")
    right, bottom = page.evaluate(f"window.harness.imageToClient({columns}, {rows})")
    return [left + 2, top + 2, right - 2, bottom - 2]


def _stats(page, rect: list[float]) -> dict:
    page.evaluate(TWO_FRAMES)
    return page.evaluate(REGION_STATS, rect)


def _grid_distance(a: dict, b: dict) -> float:
    return sum(abs(x - y) for x, y in zip(a["grid"], b["grid"], strict=True)) / len(a["grid"])


def _client(page, x: float, y: float) -> tuple[float, float]:
    cx, cy = page.evaluate(f"window.harness.imageToClient({x}, {y})")
    return cx, cy


def _drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@pytest.fixture
def lead_page(page, live_server, member, frontend_built):
    member("lena", "lead")
    log_in(page, live_server, "lena")
    return page


def test_viewer_renders_and_windows_the_full_bit_depth(
    lead_page, live_server, cases, artifacts_dir: Path
):
    page = lead_page
    instances = [_instance_of(case) for case in cases[:3]]
    errors = _open_harness(page, live_server, instances)
    first = instances[0]
    assert page.evaluate("window.harness.viewer.currentImage()") == {
        "instanceId": first.pk,
        "frame": 1,
    }
    assert page.locator("#thumbnails img").count() == 3
    rect = _image_rect(page, first.rows, first.columns)
    shown = _stats(page, rect)
    assert shown["std"] > 5, f"the image area is blank: {shown['mean']:.1f}±{shown['std']:.1f}"
    page.screenshot(path=str(artifacts_dir / "viewer-rendered.png"))

    # The file's own window is in 12-bit modality units, not 0..255 of a rendered PNG.
    own = page.evaluate("window.harness.viewer.getWindow()")
    assert own["width"] > 255, own
    page.evaluate(f"window.harness.viewer.setWindow({own['center']}, 40)")
    narrow = _stats(page, rect)
    assert page.evaluate("window.harness.viewer.getWindow()")["width"] == pytest.approx(40, abs=1)
    assert narrow["std"] > shown["std"] * 1.3, "a narrow window must raise the contrast"
    assert _grid_distance(narrow, shown) > 5

    # A radiograph has no Hounsfield scale: the Lung preset is placed within the file's own
    # window (centre at 35% of its range, 60% of its width), favouring the dark lung fields.
    page.get_by_role("button", name="Lung").click()
    lower = own["center"] - own["width"] / 2
    assert page.evaluate("window.harness.viewer.getWindow()") == {
        "center": pytest.approx(lower + 0.35 * own["width"], abs=1),
        "width": pytest.approx(0.6 * own["width"], abs=1),
    }
    page.screenshot(path=str(artifacts_dir / "viewer-lung-preset.png"))
    page.evaluate("window.harness.viewer.applyPreset('Default')")
    back = page.evaluate("window.harness.viewer.getWindow()")
    assert back["center"] == pytest.approx(own["center"], abs=1)
    assert back["width"] == pytest.approx(own["width"], abs=1)

    page.get_by_role("button", name="Invert").click()
    inverted = _stats(page, rect)
    assert inverted["mean"] == pytest.approx(255 - shown["mean"], abs=4)
    assert "Inverted" in page.text_content("#viewer .ml-overlay")
    page.screenshot(path=str(artifacts_dir / "viewer-inverted.png"))
    page.evaluate("window.harness.viewer.reset()")
    assert _stats(page, rect)["mean"] == pytest.approx(shown["mean"], abs=2)
    page.evaluate("window.harness.viewer.zoomBy(2)")
    assert _grid_distance(_stats(page, rect), shown) > 5, "zooming changed nothing"
    page.evaluate("window.harness.viewer.reset()")
    assert _grid_distance(_stats(page, rect), shown) < 1

    # A thumbnail click shows that image; keyboard focus is visible on it.
    page.locator("#thumbnails button").nth(1).click()
    page.wait_for_function(
        f"() => window.harness.viewer.currentImage()?.instanceId === {instances[1].pk}"
    )
    assert page.locator("#thumbnails button").nth(1).get_attribute("aria-selected") == "true"
    page.keyboard.press("Tab")
    assert errors == []


def test_boxes_are_drawn_shown_dashed_and_edited_by_their_handles(
    lead_page, live_server, cases, artifacts_dir: Path
):
    page = lead_page
    instance = _instance_of(cases[0])
    errors = _open_harness(page, live_server, [instance])

    page.evaluate("window.harness.viewer.setTool('rectangle')")
    page.mouse.click(*_client(page, 100, 100))  # a click is not a box
    _drag(page, _client(page, 30, 30), _client(page, 70, 60))
    page.wait_for_function("() => window.harness.events.drawn.length > 0")
    page.evaluate(TWO_FRAMES)
    assert page.evaluate("window.harness.events.drawn.length") == 1
    drawn = page.evaluate("window.harness.events.drawn[0]")
    assert drawn["instanceId"] == instance.pk and drawn["frame"] == 1
    assert drawn["x"] == pytest.approx(30, abs=1) and drawn["y"] == pytest.approx(30, abs=1)
    assert drawn["width"] == pytest.approx(40, abs=1.5)
    assert drawn["height"] == pytest.approx(30, abs=1.5)
    assert drawn["x"] >= 0 and drawn["x"] + drawn["width"] <= instance.columns
    assert drawn["y"] >= 0 and drawn["y"] + drawn["height"] <= instance.rows

    boxes = [
        {
            "id": "s1",
            "instanceId": instance.pk,
            "frame": 1,
            "x": 20,
            "y": 70,
            "width": 40,
            "height": 30,
            "finding": "nodule",
            "color": "#ecc94b",
            "kind": "suggestion",
            "label": "Nodule 0.82",
        },
        {
            "id": "d1",
            "instanceId": instance.pk,
            "frame": 1,
            "x": 80,
            "y": 20,
            "width": 30,
            "height": 30,
            "finding": "effusion",
            "color": "#63b3ed",
            "kind": "drawn",
        },
    ]
    page.evaluate("boxes => window.harness.viewer.setBoxes(boxes)", boxes)
    page.evaluate(TWO_FRAMES)
    suggestion = page.locator('#viewer svg rect[data-id="s1-rect"]')
    assert suggestion.get_attribute("stroke-dasharray") == "6,4"
    assert (
        page.locator('#viewer svg rect[data-id="d1-rect"]').get_attribute("stroke-dasharray")
    ) in (
        None,
        "",
    )
    assert "Nodule 0.82" in page.locator("#viewer svg").text_content()
    # setBoxes replaced the rectangle drawn before: only the two boxes remain.
    assert page.locator("#viewer svg rect[data-id$='-rect']").count() == 2
    page.screenshot(path=str(artifacts_dir / "viewer-boxes.png"))

    page.evaluate("window.harness.viewer.setTool('windowLevel')")
    _drag(page, _client(page, 60, 100), _client(page, 75, 110))
    page.wait_for_function("() => window.harness.events.changed.length > 0")
    changed = page.evaluate("window.harness.events.changed.at(-1)")
    assert changed["id"] == "s1"
    assert changed["x"] == pytest.approx(20, abs=1) and changed["y"] == pytest.approx(70, abs=1)
    assert changed["width"] == pytest.approx(55, abs=1.5)
    assert changed["height"] == pytest.approx(40, abs=1.5)
    page.screenshot(path=str(artifacts_dir / "viewer-box-dragged.png"))

    page.mouse.click(*_client(page, 95, 35))
    page.wait_for_function("() => window.harness.events.clicked.length > 0")
    assert page.evaluate("window.harness.events.clicked.at(-1)") == "d1"
    assert errors == []


def test_multiframe_jpeg_scrolls_frames_by_wheel_and_call(
    lead_page, live_server, project, artifacts_dir: Path
):
    page = lead_page
    # 30 frames of ultrasound in JPEG baseline: the WASM decoder in the worker, and frames.
    path = get_testdata_file("examples_ybr_color.dcm", download=False)
    if path is None:
        pytest.skip("pydicom's corpus lacks examples_ybr_color.dcm")
    result = ingest.ingest_dicom_bytes(
        project=project, data=Path(path).read_bytes(), source_name="examples_ybr_color.dcm"
    )
    instance = result.instance
    assert instance.number_of_frames == 30
    errors = _open_harness(page, live_server, [instance])
    rect = _image_rect(page, instance.rows, instance.columns)
    frame_one = _stats(page, rect)
    assert frame_one["std"] > 5

    page.evaluate("window.harness.viewer.nextFrame(14)")
    page.wait_for_function("() => window.harness.viewer.currentImage().frame === 15")
    frame_fifteen = _stats(page, rect)
    assert _grid_distance(frame_one, frame_fifteen) > 1, "frames 1 and 15 look the same"

    page.mouse.move(*_client(page, instance.columns / 2, instance.rows / 2))
    page.mouse.wheel(0, 120)
    page.wait_for_function("() => window.harness.viewer.currentImage().frame === 16")
    assert "Frame 16/30" in page.text_content("#viewer .ml-overlay")
    page.screenshot(path=str(artifacts_dir / "viewer-multiframe.png"))
    assert errors == []


def test_render_time_cold_and_prefetched(lead_page, live_server, cases):
    page = lead_page
    instances = [_instance_of(case) for case in cases]
    _open_harness(page, live_server, [])
    images = [_image(instance) for instance in instances]
    timings = page.evaluate(
        """async (images) => {
          const viewer = window.harness.viewer;
          const ms = () => window.harness.events.rendered.at(-1).ms;
          const cold = [], prefetched = [];
          for (const image of images.slice(0, 6)) {
            await viewer.setImages([image]);
            await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
            cold.push(ms());
          }
          for (const image of images.slice(6)) {
            await viewer.prefetch([image]);
            await viewer.setImages([image]);
            await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
            prefetched.push(ms());
          }
          return { cold, prefetched };
        }""",
        images,
    )
    renderer = page.evaluate("window.harness.renderer()")
    for name, values in timings.items():
        assert len(values) == 6 and all(v > 0 for v in values)
        print(
            f"\nviewer render {name}: p50 {_percentile(values, 50):.1f} ms, "
            f"p95 {_percentile(values, 95):.1f} ms over {len(values)} images "
            f"({', '.join(f'{v:.0f}' for v in values)}; {renderer} rendering)"
        )
