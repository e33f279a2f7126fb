from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.management.arguments import project_from_argument
from annotations.services import exports
from annotations.services.errors import DomainError


class Command(BaseCommand):
    help = (
        "Export a project's final labels (or, with --version, those a model version was "
        f"trained on) as one of: {', '.join(sorted(exports.FORMATS))}."
    )

    def add_base_argument(self, parser: CommandParser, *args: Any, **kwargs: Any) -> None:
        if "--version" in args:  # here --version names a model version, not Django's
            return
        super().add_base_argument(parser, *args, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--format", required=True, help=", ".join(sorted(exports.FORMATS)))
        parser.add_argument("--out", required=True, type=Path, help="file to write")
        parser.add_argument("--version", type=int, help="model version number")

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_from_argument(options["project"])
        out: Path = options["out"]
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is not a folder.")
        version: int | None = options["version"]
        partial = out.with_name(out.name + ".partial")
        try:
            exports.export_format(options["format"])
            with partial.open("wb") as stream:
                label_set = exports.export_labels(
                    project=project,
                    format_name=options["format"],
                    out=stream,
                    version=version,
                )
        except DomainError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(exc.message) from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(out)
        which = "final labels" if version is None else f"model version {version}"
        missing = (
            f", {len(label_set.missing)} snapshot labels not found" if label_set.missing else ""
        )
        self.stdout.write(
            f"Wrote {out}: {len(label_set.labels)} cases ({which} of project {project.name!r}, "
            f"{options['format']}){missing}."
        )
