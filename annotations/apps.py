from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Annotations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Values of incoming files are identifying until de-identified: pydicom must not
        # quote them in logs.
        from annotations.dicom.log_redaction import quiet_pydicom

        quiet_pydicom()
