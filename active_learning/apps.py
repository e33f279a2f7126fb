from django.apps import AppConfig


class ActiveLearningConfig(AppConfig):
    name = "active_learning"
    verbose_name = "Active learning"
    default_auto_field = "django.db.models.BigAutoField"
