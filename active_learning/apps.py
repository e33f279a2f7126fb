from typing import Any

from django.apps import AppConfig


def _flag_versions_on_withdrawal(sender: Any, **kwargs: Any) -> None:
    # Imported at the call: every process (web, worker, beat, listener) starts without the
    # loop's services loaded for it.
    from active_learning.services.withdrawals import flag_versions_on_withdrawal

    flag_versions_on_withdrawal(sender, **kwargs)


def _loop_part_of_project(project: Any) -> dict[str, Any]:
    from active_learning.services.loop_settings import project_part

    return project_part(project)


def _label_snapshot(project: Any, number: int) -> Any:
    """The label snapshot of the project's version ``number`` (None: no such version)."""
    from active_learning.models import ModelVersion

    found = ModelVersion.objects.filter(project=project, number=number)
    return found.values_list("label_snapshot", flat=True).first()


def _check_modality_change(sender: Any, *, project: Any, modality: str, **kwargs: Any) -> None:
    from active_learning.services.loop_settings import check_modality_change

    check_modality_change(project, modality)


def _delete_explanations_on_purge(sender: Any, **kwargs: Any) -> None:
    from active_learning.services.withdrawals import delete_explanations_on_purge

    delete_explanations_on_purge(sender, **kwargs)


class ActiveLearningConfig(AppConfig):
    name = "active_learning"
    verbose_name = "Active learning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A patient's withdrawal flags the versions trained on their labels, in its transaction.
        from active_learning.models import RUN_FIELDS
        from annotations.api import project_parts
        from annotations.services.consent import patient_purging, patient_withdrawn
        from annotations.services.exports.labels import register_snapshot_reader
        from annotations.services.projects import modality_changing

        patient_withdrawn.connect(_flag_versions_on_withdrawal, dispatch_uid="flag-withdrawn")
        # Its purge deletes the explanation overlays drawn for the patient's cases.
        patient_purging.connect(_delete_explanations_on_purge, dispatch_uid="purge-explanations")
        # A project's JSON shows the loop's settings; they are changed at the loop's endpoint.
        project_parts.register(
            "loop",
            project_parts.ProjectPart(
                fields=RUN_FIELDS,
                read=_loop_part_of_project,
                changed_at="/api/projects/{project_pk}/loop-settings/",
            ),
        )
        # A project's modality picks the model kind: a change is refused while the loop holds
        # model settings the new kind cannot take.
        modality_changing.connect(_check_modality_change, dispatch_uid="modality-model-config")
        # Exports of the labels a version was trained on read its snapshot from the loop.
        register_snapshot_reader(_label_snapshot)
