from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotations.management.arguments import project_from_argument
from annotations.models import IngestBatch
from annotations.services import batches


class Command(BaseCommand):
    help = (
        "Import DICOM files into a project from a folder (recursively), a zip archive, a "
        "DICOMDIR or a single file: de-identified, grouped into studies and cases, idempotent."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--project", required=True, help="project id or name")
        parser.add_argument("--user", help="username recorded as the importer")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_from_argument(options["project"])
        actor = None
        if options["user"]:
            actor = get_user_model().objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"No user {options['user']!r}.")
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        with tqdm(
            total=batches.count_sources(path),
            unit="file",
            disable=options["quiet"],
            file=self.stderr,
        ) as bar:

            def progress(line: dict[str, Any]) -> None:
                bar.update(1)
                bar.set_postfix_str(line["status"])

            batch = batches.ingest_sources(
                project=project,
                sources=batches.path_sources(path),
                source=IngestBatch.Source.COMMAND,
                actor=actor,
                on_item=progress,
            )
        for line in batch.items:
            if line["status"] == "refused":
                self.stdout.write(f"refused  {line['reason']}")
        self.stdout.write(
            f"Batch {batch.pk}: {batch.stored} stored, {batch.duplicates} already stored, "
            f"{batch.refused} refused, {batch.quarantined} quarantined for review "
            f"(project {project.name!r})."
        )
