from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "medloop.platform"
    label = "medloop_platform"
    verbose_name = "Platform"
