"""Double reading in a real browser: a reviewer adjudicates a case whose two reads disagree
(both readers' boxes over the image, the findings and reports side by side, a final label
composed from them), and the lead's dashboard charts the agreement between readers."""

from __future__ import annotations

import pytest

from annotations.models import Annotation, Case, DoubleRead
from tests.annotations.test_double_reading import _disagreeing_reads, _read
from tests.support.browser import log_in

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("frontend_built"),
]


@pytest.fixture
def disagreement(cases, member) -> Case:
    alice, bob = member("alice", "annotator"), member("bob", "annotator")
    Case.objects.filter(pk__in=[cases[0].pk, cases[1].pk]).update(required_reads=2)
    for case in cases[:2]:
        case.refresh_from_db()
    _disagreeing_reads(cases[0], alice, bob)
    _read(cases[1], alice, findings={"mass": "present"})  # agrees with bob's read below
    _read(cases[1], bob, findings={"mass": "present"})
    return cases[0]


def test_reviewer_composes_the_final_label_of_a_disagreement(
    page, live_server, member, disagreement, artifacts_dir
):
    member("rita", "reviewer")
    log_in(page, live_server, "rita")
    page.click("text=Adjudication")
    page.wait_for_selector("#adjudication[data-state=ready]")
    rows = page.locator("[data-testid=adjudication-table] tbody tr")
    assert rows.count() == 1
    rows.first.locator("button").click()
    page.wait_for_selector("#adjudication-detail svg rect")
    page.wait_for_selector("#adjudication[data-state=ready]")
    # Both readers' boxes over the image: two of Alice's (solid), two of Bob's (dashed).
    assert page.locator("svg rect.reader-a").count() == 2
    assert page.locator("svg rect.reader-b").count() == 2
    image = page.locator("figure.image img")
    image.wait_for()
    page.wait_for_function("() => document.querySelector('figure.image img').naturalWidth > 0")
    differing = page.locator("tr.differ[data-finding-row]")
    assert differing.count() == 1
    assert differing.first.get_attribute("data-finding-row") == "effusion"
    box_rows = page.locator("tr[data-box-row]")
    assert [box_rows.nth(i).get_attribute("data-box-row").split("-")[0] for i in range(3)] == [
        "pair",
        "a",
        "b",
    ]
    page.screenshot(path=str(artifacts_dir / "adjudication-open.png"))

    page.click("[data-testid=save-final]")  # the effusion call is still undecided
    alert = page.locator("#alert")
    alert.wait_for(state="visible")
    assert "Pleural effusion" in alert.inner_text()
    assert DoubleRead.objects.get(case=disagreement).status == DoubleRead.Status.PENDING

    page.select_option("select[data-finding=effusion]", "absent")
    page.select_option("tr[data-box-row^='a-'] select", "a")  # Alice's second nodule
    page.locator("fieldset[data-section=findings] button", has_text="Use B").click()
    page.click("[data-testid=save-final]")
    page.wait_for_selector("[data-testid=no-adjudications]")
    page.wait_for_selector(".detail-head .badge")
    assert "adjudicated by rita" in page.inner_text(".detail-head .badge")
    page.screenshot(path=str(artifacts_dir / "adjudication-done.png"))

    row = DoubleRead.objects.get(case=disagreement)
    assert row.status == DoubleRead.Status.ADJUDICATED
    final = Annotation.objects.get(pk=row.final_annotation_id)
    assert (final.annotator.username, final.status, final.is_adjudication) == (
        "rita",
        "accepted",
        True,
    )
    assert sorted((b.finding, b.x, b.y) for b in final.boxes.all()) == [
        ("nodule", 10.0, 10.0),
        ("nodule", 60.0, 60.0),
    ]
    assert final.findings["effusion"] == "absent" and final.findings["nodule"] == "present"
    assert final.report["findings"] == "Right upper lobe nodule. Small left effusion."


def test_lead_dashboard_charts_agreement_and_links_the_queue(
    page, live_server, member, disagreement
):
    member("lena", "lead")
    log_in(page, live_server, "lena")
    page.goto(f"{live_server.url}/projects/{disagreement.project_id}/dashboard/")
    page.wait_for_selector("#dashboard[data-state=ready]")
    assert page.inner_text("[data-testid=tile-double-reads]") == "2"
    assert page.inner_text("[data-testid=tile-adjudication]") == "1"
    table = page.locator("[data-testid=table-agreement]")
    cells = {
        row.get_attribute("data-row"): [td.inner_text() for td in row.locator("td").all()]
        for row in table.locator("tbody tr").all()
    }
    # Two cases. Nodule present/present and absent/absent -> kappa 1; box F1 on nodules: 1
    # match of 2 + 1 boxes -> 0.67. Effusion absent/present and absent/absent -> kappa 0 (observed
    # 1/2, expected 1/2), one lone box -> F1 0. Pneumothorax: absent everywhere, no box -> "—".
    assert cells["nodule"] == ["1", "0.67"]
    assert cells["effusion"] == ["0", "0"]
    assert cells["pneumothorax"] == ["—", "—"]
    drawn = page.eval_on_selector(
        "[data-testid=chart-agreement]",
        "(c) => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v > 0)",
    )
    assert drawn
    page.click("text=Adjudication")
    page.wait_for_selector("#adjudication[data-state=ready]")
    assert page.locator("[data-testid=adjudication-table] tbody tr").count() == 1
