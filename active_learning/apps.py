from django.apps import AppConfig


class ActiveLearningConfig(AppConfig):
    name = "active_learning"
    verbose_name = "Active learning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A patient's withdrawal flags the versions trained on their labels, in its transaction.
        from active_learning.services.withdrawals import flag_versions_on_withdrawal
        from annotations.services.consent import patient_withdrawn

        patient_withdrawn.connect(flag_versions_on_withdrawal, dispatch_uid="flag-withdrawn")
