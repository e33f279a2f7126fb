"""The locked test set: a stratified draw apart from the validation set, never trained on,
promoted on or thresholded on (a real cycle tries), locked under a content hash that a changed
label replaces with a new, audited version."""

from __future__ import annotations

from collections import Counter

import pytest
from django.test import override_settings

from active_learning.models import LockedTestSet, TestSetDraw
from active_learning.services import case_inputs, cycles, test_sets, versions
from active_learning.tasks import rerank_project
from annotations.models import Annotation, AuditEvent, Case
from annotations.services import annotate
from annotations.services.errors import InvalidInput
from tests.conftest import ingest_synthetic
from tests.support.training import run_whole_cycle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def models_dir(tmp_path):
    with override_settings(MODELS_DIR=tmp_path / "models", MEDLOOP_SCORING_CHUNK=6):
        versions.clear_cache()
        yield tmp_path / "models"
        versions.clear_cache()


def test_draw_is_stratified_apart_from_validation_and_made_once(project, cases, member):
    Case.objects.filter(pk__in=[c.pk for c in cases[:3]]).update(is_validation=True)
    lead = member("boss", "lead")
    test_sets.set_plan(project=project, fraction=0.5, actor=lead)
    draws = list(TestSetDraw.objects.filter(project=project))
    assert {d.case_id for d in draws} == {c.pk for c in cases[3:]}  # validation never drawn
    held = [d for d in draws if d.held_out]
    assert 0 < len(held) < len(draws)
    # Strata are sex | age band | findings (unknown before any label); each one's held-out
    # share is within one case of the fraction.
    assert all(d.stratum.count("|") == 2 and d.stratum.endswith("|?") for d in draws)
    assert all(d.stratum.split("|")[1] in {"18-39", "40-59", "60-79", "80+"} for d in draws)
    total, taken = Counter(d.stratum for d in draws), Counter(d.stratum for d in held)
    assert all(abs(taken[s] - 0.5 * n) < 1 for s, n in total.items())
    # The reference standard: held-out cases not yet read need two reads.
    assert {c.required_reads for c in Case.objects.filter(test_set_draw__held_out=True)} == {2}
    # A second draw decides nothing again; a raised fraction leaves decided cases alone.
    assert test_sets.draw(project).decided == 0
    test_sets.set_plan(project=project, fraction=0.1, actor=lead)
    assert {d.case_id for d in TestSetDraw.objects.filter(held_out=True)} == {
        d.case_id for d in held
    }
    assert AuditEvent.objects.filter(action="test_set.draw", project_id=project.pk).count() == 1


def test_cases_ingested_later_are_drawn_by_the_ingest_task(project, member, synthetic_dir):
    test_sets.set_plan(project=project, fraction=0.5, actor=member("boss", "lead"))
    cases = ingest_synthetic(project, synthetic_dir, count=8)
    # Undecided cases are not trained on until the draw has seen them.
    assert not TestSetDraw.objects.filter(project=project).exists()
    rerank_project(project.pk)  # what every ingest queues after commit
    assert TestSetDraw.objects.filter(case__in=cases).count() == 8


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"fraction": 0}, "fraction must lie in"),
        ({"fraction": 0.9}, "fraction must lie in"),
        ({"fraction": "half"}, "fraction must be a number"),
        ({"fraction": 0.2, "min_subgroup_cases": 0}, "min_subgroup_cases"),
        ({"fraction": 0.2, "double_read": "yes"}, "double_read"),
    ],
)
def test_a_bad_plan_is_refused_naming_the_field(project, fields, message):
    with pytest.raises(InvalidInput, match=message):
        test_sets.set_plan(project=project, actor=None, **fields)


def test_held_out_cases_are_never_trained_promoted_or_thresholded_on(loop_project, member):
    # Nine labelled cases: three validation, six training labels; hold half of the six out.
    test_sets.set_plan(
        project=loop_project, fraction=0.5, actor=member("boss2", "lead"), double_read=False
    )
    labelled = set(
        Annotation.objects.filter(case__project=loop_project, status="submitted").values_list(
            "case_id", flat=True
        )
    )
    drawn = TestSetDraw.objects.filter(case_id__in=labelled)
    if not drawn.filter(held_out=True).exists():
        # The draw's order is keyed by the project's secret, new in every run: now and then it
        # holds out none of the labelled cases (CI saw it once). Hold one out, as a draw could
        # have, so that the cycle below has something to leak.
        drawn.filter(pk=drawn.order_by("case_id").values("pk")[:1]).update(held_out=True)
    held = {c.pk for c in test_sets.held_out_cases(loop_project)}
    assert held & labelled, "the test set holds labelled cases: the cycle has something to leak"
    training = set(case_inputs.training_annotations(loop_project).values_list("case_id", flat=True))
    validation = set(
        case_inputs.training_annotations(loop_project, validation=True).values_list(
            "case_id", flat=True
        )
    )
    assert not held & (training | validation)
    assert training == labelled - held - validation

    # A real cycle: its label snapshot (training) and its validation labels (promotion and the
    # operating thresholds) name no held-out case.
    cycle = run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    assert cycle.status == "succeeded", cycle.error
    version = cycle.model_version
    assert version is not None
    trained_on = set(
        Annotation.objects.filter(pk__in=[pk for pk, _ in version.label_snapshot]).values_list(
            "case_id", flat=True
        )
    )
    assert trained_on == training and not trained_on & held
    assert len(cycle.label_snapshot) == len(training)


def _submit(case: Case, annotator, findings: dict[str, str]) -> Annotation:
    annotation = annotate.start_annotation(case=case, annotator=annotator)
    return annotate.submit(
        annotation=annotation, actor=annotator, expected_version=annotation.version,
        findings=findings, report={"findings": "Lungs clear."}, boxes=[],
    )  # fmt: skip


def test_locking_freezes_labels_and_a_changed_label_makes_a_new_audited_version(
    project, cases, member
):
    lead, reader, reviewer = (
        member("boss", "lead"),
        member("r", "annotator"),
        member("v", "reviewer"),
    )
    test_sets.set_plan(project=project, fraction=0.5, actor=lead, double_read=False)
    members = test_sets.held_out_cases(project)
    keys = project.finding_keys
    first = _submit(members[0], reader, {k: "absent" for k in keys})
    _submit(members[1], reader, {k: "present" for k in keys})

    v1, created = test_sets.lock(project=project, actor=lead)
    assert created and v1.version == 1 and v1.case_count == len(members) and v1.labelled_count == 2
    assert len(v1.content_hash) == 64
    again, created = test_sets.lock(project=project, actor=lead)
    assert not created and again.pk == v1.pk  # nothing changed: the same version
    assert test_sets.status(project)["changed_since_lock"] is False

    # A reviewer returns the first label and its reader submits it changed.
    annotate.review(annotation=first, reviewer=reviewer, accept=False, comment="recheck",
                    expected_version=first.version)  # fmt: skip
    first.refresh_from_db()
    annotate.submit(annotation=first, actor=reader, expected_version=first.version,
                    findings={keys[0]: "present"})  # fmt: skip
    assert test_sets.status(project)["changed_since_lock"] is True

    v2, created = test_sets.lock(project=project, actor=lead)
    assert created and v2.version == 2 and v2.previous_id == v1.pk
    assert v2.content_hash != v1.content_hash
    v1.refresh_from_db()  # the first version is frozen as it was
    frozen = {c["case_id"]: c["label"] for c in v1.content["cases"]}
    assert frozen[members[0].pk]["findings"][keys[0]] == "absent"
    assert test_sets.content_hash(v1.content) == v1.content_hash
    event = AuditEvent.objects.filter(action="test_set.lock").order_by("-pk").first()
    assert event is not None and event.detail["version"] == 2
    assert event.detail["previous_hash"] == v1.content_hash
    assert event.detail["changed_cases"] == [members[0].pk]
    assert LockedTestSet.objects.filter(project=project).count() == 2


def test_locking_without_a_plan_is_refused(project):
    with pytest.raises(InvalidInput, match="no test set plan"):
        test_sets.lock(project=project, actor=None)


def test_the_test_set_api_sets_the_plan_locks_and_refuses_bad_input(
    project, cases, member, api_for
):
    lead, owner = api_for(member("boss", "lead")), api_for(member("owner9", "model_owner"))
    annotator = api_for(member("reader", "annotator"))
    url = f"/api/projects/{project.pk}/test-set/"
    assert owner.get(url).json()["plan"] is None
    bad = lead.put(url, {"fraction": 0.9}, format="json")
    assert bad.status_code == 400 and "fraction" in bad.json()["message"]
    assert lead.put(url, {}, format="json").status_code == 400  # fraction is required
    assert owner.put(url, {"fraction": 0.2}, format="json").status_code == 403  # leads set it
    assert annotator.get(url).status_code == 403
    done = lead.put(url, {"fraction": 0.5, "min_subgroup_cases": 5}, format="json")
    assert done.status_code == 200, done.content
    body = done.json()
    assert body["plan"]["min_subgroup_cases"] == 5 and body["cases"] > 0 and body["locked"] is None
    first = lead.post(f"{url}lock/")
    assert first.status_code == 201 and first.json()["version"] == 1
    again = lead.post(f"{url}lock/")
    assert again.status_code == 200 and again.json()["content_hash"] == first.json()["content_hash"]
    assert owner.get(url).json()["changed_since_lock"] is False
