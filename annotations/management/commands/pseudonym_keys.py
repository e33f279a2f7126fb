from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from annotations.models import Project


class Command(BaseCommand):
    help = (
        "List where each project's pseudonym key comes from: derived from MEDLOOP_PSEUDONYM_KEY "
        "(nothing secret in the database) or a legacy secret stored in the database (projects "
        "created before keys were derived; see README, 'Pseudonym key')."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        legacy = 0
        for project in Project.objects.order_by("pk"):
            if project.uses_legacy_pseudonym_secret:
                legacy += 1
                source = "LEGACY secret stored in the database"
            else:
                source = "derived from MEDLOOP_PSEUDONYM_KEY"
            self.stdout.write(f"{project.pk}\t{project.name}\t{source}")
        self.stdout.write(f"{legacy} project(s) with a legacy secret in the database.")
