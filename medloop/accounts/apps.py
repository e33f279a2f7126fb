from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Accounts: API tokens and how they were issued (with or without a second factor)."""

    name = "medloop.accounts"
    label = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from medloop.accounts import signals

        signals.connect()
