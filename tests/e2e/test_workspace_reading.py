"""Reading the workspace (issue 18, item 8): the tag that marks a finding the model prefilled is
never cut off behind a long name, box labels are legible over any image, and the mouse wheel
zooms the image as in every DICOM viewer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_workspace import _open_workspace, _suggest
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LONG_NAME = "Solitary pulmonary nodule or small mass"

# Per prefilled finding: its tag's and its row header's boxes, whether the tag is what the eye
# sees at its centre, and whether the name is cut short.
PREFILLED = """() => [...document.querySelectorAll('.findings-table tr.prefilled')].map((row) => {
  const th = row.querySelector('th').getBoundingClientRect();
  const tag = row.querySelector('.model-tag');
  const name = row.querySelector('.finding-name') || row.querySelector('th');
  if (!tag) return { finding: row.dataset.finding, tag: null };
  const box = tag.getBoundingClientRect();
  const seen = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
  return { finding: row.dataset.finding, tag: tag.textContent,
           inside: box.left >= th.left - 0.5 && box.right <= th.right + 0.5 && box.width > 0,
           seen: seen === tag || tag.contains(seen), whole: tag.scrollWidth <= tag.clientWidth,
           nameCut: name.scrollWidth > name.clientWidth };
})"""

# WCAG contrast of each box label's text against its plate, the plate laid over a white and a
# black image pixel (the worst cases an image can put under it).
LABEL_CONTRAST = """() => {
  const ctx = document.createElement('canvas').getContext('2d');
  const rgba = (color) => {
    ctx.fillStyle = '#000'; ctx.fillStyle = color;
    const c = ctx.fillStyle;
    if (c.startsWith('#')) return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)).concat(1);
    const [r, g, b, a] = c.match(/[\\d.]+/g).map(Number); return [r, g, b, a ?? 1];
  };
  const over = ([r, g, b, a], base) => [r, g, b].map((v, i) => v * a + base[i] * (1 - a));
  const lum = (rgb) => {
    const [r, g, b] = rgb.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (x, y) => {
    const [a, b] = [lum(x), lum(y)].sort((p, q) => q - p);
    return (a + 0.05) / (b + 0.05);
  };
  const texts = [...document.querySelectorAll('#viewer svg text')];
  return texts.filter((t) => t.textContent.trim()).map((text) => {
    const plate = text.parentElement.querySelector('rect.background');
    const fill = rgba(text.getAttribute('fill') || getComputedStyle(text).fill);
    const worst = [[255, 255, 255], [0, 0, 0]].map((pixel) => {
      const under = plate ? over(rgba(plate.getAttribute('fill')), pixel) : pixel;
      return ratio(over(fill, under), under);
    });
    return { text: text.textContent, contrast: Math.min(...worst) };
  });
}"""


@pytest.mark.parametrize("width,height", [(1366, 768), (1920, 1080)])
def test_the_model_tag_of_a_prefilled_finding_is_never_cut_off(
    browser, live_server, project, member, cases, width, height, artifacts_dir: Path
):
    schema = project.label_schema
    for finding in schema["findings"]:
        if finding["key"] == "nodule":
            finding["name"] = LONG_NAME
    project.label_schema = schema
    project.save(update_fields=["label_schema"])
    _suggest(project, cases)  # nodule 0.8 (prefilled present), effusion 0.05 (prefilled absent)
    member("ann", "annotator")
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        log_in(page, live_server, "ann")
        _open_workspace(page, live_server, project)
        page.wait_for_selector(".findings-table tr.prefilled")
        rows = page.evaluate(PREFILLED)
        page.locator(".findings").screenshot(path=str(artifacts_dir / f"findings-{width}.png"))
        assert {row["finding"] for row in rows} >= {"nodule", "effusion"}
        for row in rows:
            assert row["tag"] == "model", row
            assert row["inside"] and row["seen"] and row["whole"], row
        long = next(row for row in rows if row["finding"] == "nodule")
        # The case of the issue: the name is cut short, the tag is not.
        assert long["nameCut"] or width >= 1920, long
        # The table stays inside its panel (nothing hidden to the right).
        table = page.locator(".findings-table").bounding_box()
        panel = page.locator(".right").bounding_box()
        assert table["x"] + table["width"] <= panel["x"] + panel["width"] + 0.5
        title = page.locator(".findings-table tr[data-finding=nodule] th").get_attribute("title")
        assert title == LONG_NAME
    finally:
        page.goto("about:blank")
        context.close()


def test_box_labels_are_legible_and_the_wheel_zooms(
    page, live_server, project, member, cases, artifacts_dir: Path
):
    _suggest(project, cases)
    member("ann", "annotator")
    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    page.wait_for_function(
        "[...document.querySelectorAll('#viewer svg text')].some((t) => t.textContent.trim())"
    )
    labels = page.evaluate(LABEL_CONTRAST)
    page.locator("#viewer").screenshot(path=str(artifacts_dir / "box-labels.png"))
    assert labels, "no box label drawn"
    for label in labels:
        assert label["contrast"] >= 4.5, label

    page.wait_for_function("document.querySelector('#viewer').dataset.zoom !== undefined")
    fitted = float(page.get_attribute("#viewer", "data-zoom"))
    box = page.locator("#viewer").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):  # three notches towards the user: about 4 % each (Cornerstone's ZoomTool)
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(50)
    page.wait_for_function(
        f"Number(document.querySelector('#viewer').dataset.zoom) > {fitted} * 1.05"
    )
    zoomed = float(page.get_attribute("#viewer", "data-zoom"))
    page.mouse.wheel(0, 120)
    page.wait_for_function(
        f"Number(document.querySelector('#viewer').dataset.zoom) < {zoomed} - 0.02"
    )
    # The README's picture of the workspace: legible box labels on an image zoomed by the wheel.
    page.mouse.wheel(0, -120)
    page.wait_for_function(
        f"Number(document.querySelector('#viewer').dataset.zoom) > {zoomed} - 0.005"
    )
    page.mouse.move(0, 0)
    page.screenshot(path=str(artifacts_dir / "workspace-wheel-zoom.png"))
