"""Delete audit events past the retention period (run as the role that owns the tables)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotations.services.audit_retention import prune_events
from annotations.services.errors import DomainError


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=settings.MEDLOOP_AUDIT_RETENTION_DAYS,
            help="delete events older than this (at least MEDLOOP_AUDIT_RETENTION_DAYS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            deleted = prune_events(older_than_days=options["older_than_days"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Deleted {deleted} audit events.")
