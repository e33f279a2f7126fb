from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Accounts: login and logout, the lockout after failed logins, password hashing, the
    second factor and API tokens (and how they were issued); their audit events."""

    name = "medloop.accounts"
    label = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from medloop.accounts import audit_signals, signals

        signals.connect()
        # Logins, failed logins, lockouts and logouts become audit events.
        audit_signals.connect()
