"""Run the whole platform on one machine: start the embedded broker, migrate, seed the demo, then
start a Celery worker, Celery beat, the web server (gunicorn, DEBUG off) and the DICOM listener
under a supervisor that restarts whichever of them exits; Ctrl-C stops all of it."""

from __future__ import annotations

import os
import signal
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from medloop import embedded_broker
from medloop.env import env_int
from medloop.platform.demo import DEMO_USERS, seed_demo
from medloop.supervisor import ChildSpec, GaveUp, Supervisor


class Command(BaseCommand):
    help = (
        "Run the embedded broker, web server, Celery worker and beat and the DICOM listener "
        "together on the embedded defaults, restarting any that exits (see README)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default=os.environ.get("MEDLOOP_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=env_int("MEDLOOP_PORT", 8000))
        parser.add_argument("--demo-cases", type=int, default=40)
        parser.add_argument("--no-demo", action="store_true", help="skip demo users and data")
        parser.add_argument(
            "--dicom-port",
            type=int,
            default=env_int("MEDLOOP_DICOM_PORT", 11112),
            help="C-STORE listener port on the same host (0: no listener)",
        )
        parser.add_argument(
            "--dev-server",
            action="store_true",
            help="serve with Django's development server and DEBUG on instead of gunicorn",
        )
        parser.add_argument(
            "--web-workers",
            type=int,
            default=env_int("MEDLOOP_WEB_WORKERS", 2),
            help="gunicorn worker processes (each with 4 threads)",
        )
        parser.add_argument(
            "--worker-concurrency",
            type=int,
            default=env_int("MEDLOOP_WORKER_CONCURRENCY", 2),
            help="Celery worker processes",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        settings.STORAGE_DIR.mkdir(parents=True, exist_ok=True)
        # WhiteNoise serves the apps' static folders (finders); an empty STATIC_ROOT keeps it
        # from warning that the collectstatic folder is missing.
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        env = self._child_env(dev_server=options["dev_server"])
        # The broker first: migrations and seeding may already queue tasks.
        broker_specs = self._broker_specs(env)
        supervisor = Supervisor(broker_specs)
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            supervisor.start_all()
            call_command("migrate", interactive=False, verbosity=0)
            credentials: dict[str, str] = {}
            demo_project_id = None
            if not options["no_demo"]:
                self.stdout.write("Preparing demo data...")
                summary = seed_demo(count=options["demo_cases"])
                credentials = summary.credentials
                demo_project_id = summary.project.pk
            # The listener stores into the demo project, known only now.
            supervisor.add(*self._process_specs(env, options, demo_project_id=demo_project_id))
            if not stopping:
                supervisor.start_all()
                banner = self._banner(options, credentials, demo_project_id, bool(broker_specs))
                self.stdout.write(banner)
                self.stdout.flush()
                supervisor.run(lambda: stopping)
        except GaveUp as exc:
            supervisor.stop_all()
            raise CommandError(f"{exc}; see the log above. MedLoop stopped.") from exc
        except BaseException:
            supervisor.stop_all()
            raise
        supervisor.stop_all()
        restarts = {name: n for name, n in supervisor.restarts().items() if n}
        if restarts:
            self.stdout.write(f"Restarts while running: {restarts}")
        self.stdout.write("MedLoop stopped.")

    def _child_env(self, *, dev_server: bool) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            # Named explicitly: gunicorn's and Celery's entry points default to production.
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "DJANGO_SETTINGS_MODULE", "medloop.settings.local"
            ),
            # The same broker for every child, whatever their settings would compute.
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        }
        if not dev_server:
            # `make run` is what a new user runs: no debug pages showing settings.
            env["DJANGO_DEBUG"] = "false"
        return env

    def _broker_specs(self, env: dict[str, str]) -> list[ChildSpec]:
        """The embedded broker, when the settings point at it (not at a broker of one's own)."""
        var_dir = Path(settings.VAR_DIR)
        if embedded_broker.broker_url(var_dir) != settings.CELERY_BROKER_URL:
            return []
        try:
            binary = embedded_broker.find_server_binary()
            socket_path = embedded_broker.prepare_socket_folder(var_dir)
        except (embedded_broker.BrokerServerNotFound, PermissionError) as exc:
            raise CommandError(str(exc)) from exc
        return [
            ChildSpec(
                name="broker",
                command=embedded_broker.server_command(binary, var_dir),
                env=env,
                ready=lambda: embedded_broker.wait_until_ready(socket_path),
                stop_last=True,
            )
        ]

    def _process_specs(
        self, env: dict[str, str], options: dict[str, Any], *, demo_project_id: int | None
    ) -> list[ChildSpec]:
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        celery = [python, "-m", "celery", "-A", "medloop"]
        bind = f"{options['host']}:{options['port']}"
        if options["dev_server"]:
            web = [python, manage, "runserver", "--noreload", bind]
        else:
            web = [
                python,
                "-m",
                "gunicorn",
                "medloop.wsgi:application",
                "--bind",
                bind,
                "--workers",
                str(options["web_workers"]),
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                # Uploads of large studies and imports may run for a while.
                "--timeout",
                "300",
                "--graceful-timeout",
                "10",
                "--error-logfile",
                "-",
                # gunicorn's control socket sits in ~/.gunicorn, shared by every instance.
                "--no-control-socket",
            ]
        specs = [
            ChildSpec(
                name="worker",
                command=[
                    *celery,
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    str(options["worker_concurrency"]),
                    "--queues",
                    "default,training,inference",
                ],
                env=env,
            ),
            ChildSpec(
                name="beat",
                command=[
                    *celery,
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    settings.CELERY_BEAT_SCHEDULE_FILENAME,
                ],
                env=env,
            ),
            ChildSpec(name="web", command=web, env=env),
        ]
        if options["dicom_port"]:
            listener = [
                python,
                manage,
                "dicom_listener",
                "--host",
                options["host"],
                "--port",
                str(options["dicom_port"]),
            ]
            if demo_project_id is not None:
                listener += ["--project", str(demo_project_id)]
            specs.append(ChildSpec(name="listener", command=listener, env=env))
        return specs

    def _banner(
        self,
        options: dict[str, Any],
        credentials: dict[str, str],
        demo_project_id: int | None,
        embedded: bool,
    ) -> str:
        url = f"http://{options['host']}:{options['port']}/"
        server = (
            "Django development server, DEBUG on"
            if options["dev_server"]
            else f"gunicorn, {options['web_workers']} workers, DEBUG off"
        )
        broker = (
            f"embedded Valkey broker ({settings.CELERY_BROKER_URL})"
            if embedded
            else f"{settings.CELERY_BROKER_URL.split('://')[0]}:// broker"
        )
        if options["dicom_port"]:
            dicom_line = (
                f"DICOM C-STORE listener: AE title MEDLOOP at {options['host']}:"
                f"{options['dicom_port']}"
                + (" (into the demo project)" if demo_project_id is not None else "")
            )
        else:
            dicom_line = "No DICOM listener (--dicom-port 0)."
        lines = [
            "",
            f"MedLoop is running at {url}  (API docs: {url}api/docs/, admin: {url}admin/)",
            f"Web server: {server}",
            f"Celery worker and beat on the {broker}, "
            f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}",
            dicom_line,
            "A process that exits is restarted (with backoff) and the restart is logged.",
        ]
        for username in DEMO_USERS:
            if username in credentials:
                lines.append(f"  user {username:<11} password {credentials[username]}")
        lines.append("Press Ctrl-C to stop.")
        return "\n".join(lines)
