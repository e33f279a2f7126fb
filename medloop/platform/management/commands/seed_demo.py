from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from medloop.platform.demo import seed_demo


class Command(BaseCommand):
    help = "Create demo users, the demo project and synthetic multimodal cases (idempotent)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--count", type=int, default=40, help="synthetic cases (default 40)")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--size", type=int, default=512, help="image size in pixels")

    def handle(self, *args: Any, **options: Any) -> None:
        summary = seed_demo(count=options["count"], seed=options["seed"], size=options["size"])
        self.stdout.write(
            f"Project {summary.project.name!r} (id {summary.project.pk}): "
            f"{summary.cases_created} new cases, {summary.cases_total} in all."
        )
