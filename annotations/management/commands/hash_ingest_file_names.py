from typing import Any

from django.core.management.base import BaseCommand

from annotations.services import batches


class Command(BaseCommand):
    help = (
        "Replace the original file names that ingest reports written before names were hashed "
        "still hold by a label and their keyed hash (COCO imports keep matching). Idempotent."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        changed = batches.hash_stored_source_names()
        self.stdout.write(f"{changed} report lines had a file name; none is kept now.")
