from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations import permissions
from annotations.management.arguments import project_from_argument
from annotations.services import imports
from annotations.services.errors import DomainError


def _mapping(pairs: list[str]) -> dict[str, str] | None:
    mapping = {}
    for pair in pairs:
        name, sep, key = pair.rpartition("=")
        if not sep or not name.strip() or not key.strip():
            raise CommandError(f"--map takes 'coco name=finding key', got {pair!r}.")
        mapping[name.strip()] = key.strip()
    return mapping or None


class Command(BaseCommand):
    help = (
        "Import box labels from a COCO JSON file (CVAT 'COCO 1.0', Label Studio 'COCO', or a "
        "MedLoop coco export) into a project whose images are already ingested: one submitted "
        "annotation per matched case, by the user given with --as."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("path", type=Path, help="the COCO JSON file")
        parser.add_argument(
            "--as",
            dest="username",
            required=True,
            help="the user the labels are imported as (a lead or admin of the project)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print the report, write nothing"
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="NAME=KEY",
            help="map a COCO category name to a finding key (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_from_argument(options["project"])
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        if not permissions.allowed(user, project.pk, "ingest", "upload"):
            raise CommandError(
                f"{user.username} is not a lead or admin of project {project.name!r}; "
                "labels are imported as one."
            )
        path: Path = options["path"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        try:
            report = imports.import_coco(
                project=project,
                data=data,
                actor=user,
                category_map=_mapping(options["map"]),
                dry_run=options["dry_run"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self._print(report)

    def _print(self, report: imports.ImportReport) -> None:
        write = self.stdout.write
        by = ", ".join(f"{n} by {rule}" for rule, n in report.matched_by.items() if n)
        write(f"Matched {report.matched} of {report.images} images ({by}).")
        if report.scaled_images:
            write(f"{report.scaled_images} images differ in size from the stored ones: scaled.")
        write(
            "Categories: "
            + ", ".join(f"{name} -> {key}" for name, key in report.categories.items())
        )
        for skipped in report.skipped:
            write(f"skipped   case {skipped.case_id}: {skipped.reason}")
        for unmatched in report.unmatched:
            write(f"unmatched {unmatched.file_name}: {unmatched.reason}")
        verb = "Would import" if report.dry_run else "Imported"
        write(
            f"{verb} {len(report.imported_cases)} cases with {report.boxes} boxes "
            f"({report.cases_without_boxes} without boxes); {len(report.skipped)} cases "
            f"skipped, {len(report.unmatched)} images unmatched."
            + (" Dry run: nothing was written." if report.dry_run else "")
        )
