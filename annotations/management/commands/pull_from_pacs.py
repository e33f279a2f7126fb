from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotations.models import Project
from annotations.services.errors import DomainError
from annotations.services.pacs import DEFAULT_PULL_LIMIT, pull_studies


class Command(BaseCommand):
    help = (
        "Pull studies from the project's PACS over DICOMweb (QIDO-RS search, WADO-RS "
        "retrieve) by Study Instance UID or by patient and date; prints a summary."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="project id")
        parser.add_argument(
            "--study", action="append", default=[], metavar="UID", help="Study Instance UID"
        )
        parser.add_argument("--patient-id", help="QIDO-RS PatientID")
        parser.add_argument("--since", metavar="YYYYMMDD", help="studies on or after this date")
        parser.add_argument("--modality", help="QIDO-RS ModalitiesInStudy, e.g. CT")
        parser.add_argument("--url", help="DICOMweb root (default: the project's)")
        parser.add_argument("--limit", type=int, default=DEFAULT_PULL_LIMIT, help="max studies")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(pk=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with id {options['project']}.")
        if options["url"]:
            project.dicomweb_url = options["url"]
        query: dict[str, str] = {}
        if options["patient_id"]:
            query["PatientID"] = options["patient_id"]
        if options["since"]:
            since = options["since"]
            if len(since) != 8 or not since.isdigit():
                raise CommandError("--since takes a date as YYYYMMDD.")
            query["StudyDate"] = f"{since}-"
        if options["modality"]:
            query["ModalitiesInStudy"] = options["modality"]
        if not options["study"] and not query:
            raise CommandError("Give --study UID, or --patient-id / --since / --modality.")
        try:
            batch = pull_studies(
                project=project,
                study_instance_uids=options["study"] or None,
                query=None if options["study"] else query,
                limit=options["limit"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for item in batch.items:
            if item["status"] == "refused":
                self.stdout.write(f"  refused  {item['source']}: {item['reason']}")
        self.stdout.write(
            f"Pulled into project {project.pk} (batch {batch.pk}): {batch.stored} stored, "
            f"{batch.duplicates} already there, {batch.refused} refused, "
            f"{batch.quarantined} quarantined."
        )
