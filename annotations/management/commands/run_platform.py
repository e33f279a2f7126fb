"""Run the whole platform on one machine: migrate, seed the demo, start a Celery worker (with
beat) on the configured broker and the web server; Ctrl-C stops all of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from annotations.services.demo import DEMO_USERS, seed_demo


class Command(BaseCommand):
    help = "Run web server and Celery worker together on the embedded defaults (see README)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default=os.environ.get("MEDLOOP_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("MEDLOOP_PORT", 8000)))
        parser.add_argument("--demo-cases", type=int, default=40)
        parser.add_argument("--no-demo", action="store_true", help="skip demo users and data")
        parser.add_argument(
            "--dicom-port",
            type=int,
            default=int(os.environ.get("MEDLOOP_DICOM_PORT", 11112)),
            help="C-STORE listener port on the same host (0: no listener)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        settings.STORAGE_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        credentials: dict[str, str] = {}
        demo_project_id = None
        if not options["no_demo"]:
            self.stdout.write("Preparing demo data...")
            summary = seed_demo(count=options["demo_cases"])
            credentials = summary.credentials
            demo_project_id = summary.project.pk
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "medloop",
                "worker",
                "--beat",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--queues",
                "default,training,inference",
                "--schedule",
                settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
            env=env,
            start_new_session=True,
        )
        web = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runserver",
                "--noreload",
                f"{options['host']}:{options['port']}",
            ],
            env=env,
            start_new_session=True,
        )
        children = [web, worker]
        dicom_line = "No DICOM listener (--dicom-port 0)."
        if options["dicom_port"]:
            listener = [
                sys.executable,
                "manage.py",
                "dicom_listener",
                "--host",
                options["host"],
                "--port",
                str(options["dicom_port"]),
            ]
            if demo_project_id is not None:
                listener += ["--project", str(demo_project_id)]
            children.append(subprocess.Popen(listener, env=env, start_new_session=True))
            dicom_line = (
                f"DICOM C-STORE listener: AE title MEDLOOP at {options['host']}:"
                f"{options['dicom_port']}"
                + (" (into the demo project)" if demo_project_id is not None else "")
            )
        url = f"http://{options['host']}:{options['port']}/"
        lines = [
            "",
            f"MedLoop is running at {url}  (API docs: {url}api/docs/, admin: {url}admin/)",
            f"Celery worker on {settings.CELERY_BROKER_URL.split('://')[0]}:// broker, "
            f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}",
            dicom_line,
        ]
        for username in DEMO_USERS:
            if username in credentials:
                lines.append(f"  user {username:<11} password {credentials[username]}")
        lines.append("Press Ctrl-C to stop.")
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
        self._supervise(children)

    def _supervise(self, children: list[subprocess.Popen[bytes]]) -> None:
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.3)
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self.stdout.write("MedLoop stopped.")
        if not stopping:
            raise SystemExit("A MedLoop process exited unexpectedly; see the log above.")
