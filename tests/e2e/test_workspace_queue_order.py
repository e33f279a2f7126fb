"""The workspace's queue order as an annotator meets it (issue 18, item 8): work a reviewer
returned comes back at the next submit, before the case the workspace had prefetched; a new tab
opens the case the annotator was on, not the lowest-numbered case they hold."""

from __future__ import annotations

import pytest

from annotations.models import Case
from annotations.services import annotate, queue
from tests.e2e.test_workspace import _case_id_shown, _wait_rendered, wait_prefetched
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _open_workspace(page, live_server, project) -> None:
    page.goto(f"{live_server.url}/projects/{project.pk}/label/")
    page.wait_for_function(
        "document.querySelector('.case-info')?.textContent.includes('Case ')", timeout=30_000
    )
    _wait_rendered(page)


def _submit_and_wait(page, count: int) -> int:
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        f"window.medloopTimings.submitToRenderMs.length >= {count}", timeout=30_000
    )
    return _case_id_shown(page)


def test_returned_work_comes_before_the_prefetched_case(
    page, live_server, project, member, cases, frontend_built
):
    ann, rita = member("ann", "annotator"), member("rita", "reviewer")
    earlier = queue.lease_next_case(project=project, annotator=ann)
    draft = annotate.start_annotation(case=earlier, annotator=ann)
    submitted = annotate.submit(annotation=draft, actor=ann, expected_version=draft.version)

    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    current = _case_id_shown(page)
    wait_prefetched(page, current)
    prefetched = Case.objects.filter(leased_to=ann).exclude(pk=current).get().pk

    annotate.review(
        annotation=submitted,
        reviewer=rita,
        accept=False,
        comment="Measure the nodule again",
        expected_version=submitted.version,
    )
    assert _submit_and_wait(page, 1) == earlier.pk
    banner = page.locator("[data-banner=returned]")
    assert "Measure the nodule again" in banner.inner_text()
    # The prefetched case is still next.
    wait_prefetched(page, earlier.pk)
    assert _submit_and_wait(page, 2) == prefetched


def test_a_new_tab_opens_the_case_the_annotator_was_on(
    page, live_server, project, member, cases, frontend_built
):
    # The queue's first case has the highest id: the prefetched one after it has a lower id.
    Case.objects.filter(pk=cases[-1].pk).update(priority=0.9)
    member("ann", "annotator")
    log_in(page, live_server, "ann")
    _open_workspace(page, live_server, project)
    assert _case_id_shown(page) == cases[-1].pk
    wait_prefetched(page, cases[-1].pk)
    assert Case.objects.filter(leased_to__username="ann").count() == 2

    tab = page.context.new_page()
    try:
        _open_workspace(tab, live_server, project)
        assert _case_id_shown(tab) == cases[-1].pk
    finally:
        tab.goto("about:blank")
        tab.close()
