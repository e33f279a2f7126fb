from typing import Any

from django.apps import AppConfig


def _flag_versions_on_withdrawal(sender: Any, **kwargs: Any) -> None:
    # Imported at the call: every process (web, worker, beat, listener) starts without the
    # loop's services loaded for it.
    from active_learning.services.withdrawals import flag_versions_on_withdrawal

    flag_versions_on_withdrawal(sender, **kwargs)


def _delete_explanations_on_purge(sender: Any, **kwargs: Any) -> None:
    from active_learning.services.withdrawals import delete_explanations_on_purge

    delete_explanations_on_purge(sender, **kwargs)


class ActiveLearningConfig(AppConfig):
    name = "active_learning"
    verbose_name = "Active learning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A patient's withdrawal flags the versions trained on their labels, in its transaction.
        from annotations.services.consent import patient_purging, patient_withdrawn

        patient_withdrawn.connect(_flag_versions_on_withdrawal, dispatch_uid="flag-withdrawn")
        # Its purge deletes the explanation overlays drawn for the patient's cases.
        patient_purging.connect(_delete_explanations_on_purge, dispatch_uid="purge-explanations")
