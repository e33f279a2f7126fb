from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotations.management.arguments import project_from_argument
from annotations.services.errors import DomainError
from annotations.services.fhir_import import import_fhir, pull_fhir


class Command(BaseCommand):
    help = (
        "Import an EHR extract as HL7 FHIR R4 (a Bundle in JSON, or bulk-data NDJSON): labs, "
        "clinical text, consents and imaging study links; refused resources are listed by "
        "position with the validator's message."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument(
            "path",
            help="a Bundle or NDJSON file, or a FHIR search URL (http/https: its pages "
            "are followed by their next links)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_from_argument(options["project"])
        source: str = options["path"]
        path = Path(source)
        try:
            if source.startswith(("http://", "https://")):
                batch = pull_fhir(project=project, search_url=source)
            else:
                batch = import_fhir(project=project, data=path.read_bytes(), file_name=path.name)
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for line in batch.items:
            if line["status"] != "imported":
                self.stdout.write(
                    f"{line['status']:<9} entry {line['position']} ({line['resource']}): "
                    f"{line.get('reason', '')}"
                )
        self.stdout.write(
            f"{batch.stored} resources imported, {batch.refused} not (batch {batch.pk})."
        )
