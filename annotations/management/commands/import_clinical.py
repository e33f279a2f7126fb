from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotations.management.arguments import project_from_argument
from annotations.services.clinical_import import import_clinical_context
from annotations.services.errors import InvalidInput


class Command(BaseCommand):
    help = (
        "Import clinical context (indication, history, lab results) from a CSV or JSON file, "
        "matched to cases by accession number or patient ID; unmatched rows are listed."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--project", required=True, help="project id or name")

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_from_argument(options["project"])
        path: Path = options["path"]
        try:
            batch = import_clinical_context(
                project=project, data=path.read_bytes(), file_name=path.name
            )
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        except InvalidInput as exc:
            raise CommandError(exc.message) from exc
        for line in batch.items:
            if line["status"] != "matched":
                self.stdout.write(f"{line['status']:<9} {line['source']}: {line['reason']}")
        self.stdout.write(
            f"{batch.stored} cases updated, {batch.refused} rows not imported (batch {batch.pk})."
        )
