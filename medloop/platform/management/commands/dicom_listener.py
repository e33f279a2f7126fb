import signal
import threading
import time
from argparse import ArgumentParser
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotations.dicom.scp import ListenerConfig, start_listener
from annotations.models import Project


class Command(BaseCommand):
    help = (
        "Receive images over DICOM (C-STORE, C-ECHO) until Ctrl-C. A project whose DICOM AE "
        "title is the called AE title receives them; --project names the project for the "
        "listener's own AE title."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--ae-title", default="MEDLOOP", help="listener AE title")
        parser.add_argument("--host", default="127.0.0.1", help="bind address")
        parser.add_argument("--port", type=int, default=11112)
        parser.add_argument(
            "--project", type=int, default=None, help="project id for the listener's AE title"
        )
        parser.add_argument(
            "--max-pdu", type=int, default=16382, help="maximum PDU size (0: unlimited)"
        )
        parser.add_argument(
            "--max-instance-bytes",
            type=int,
            default=None,
            help="largest instance accepted (default MEDLOOP_MAX_INSTANCE_BYTES)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ae_title = options["ae_title"].strip()
        if not ae_title or len(ae_title) > 16:
            raise CommandError("The AE title must be 1 to 16 characters.")
        project_id = options["project"]
        if project_id is not None and not Project.objects.filter(pk=project_id).exists():
            raise CommandError(f"No project with id {project_id}.")
        config = ListenerConfig(
            ae_title=ae_title,
            host=options["host"],
            port=options["port"],
            default_project_id=project_id,
            max_pdu=options["max_pdu"],
            max_instance_bytes=options["max_instance_bytes"],
        )
        try:
            server = start_listener(config)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {config.host}:{config.port}: {exc}") from exc
        routed = Project.objects.exclude(dicom_ae_title=None).exclude(dicom_ae_title="")
        self.stdout.write(
            f"Listening as {ae_title} on {config.host}:{config.port}"
            + (f", default project {project_id}" if project_id else "")
            + "".join(f"; {p.dicom_ae_title} -> project {p.pk}" for p in routed)
            + ". Ctrl-C to stop."
        )
        self.stdout.flush()

        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop.wait(0.5):
            pass
        self.stdout.write("Stopping: finishing open associations.")
        server.shutdown()
        ae = server.ae
        deadline = time.monotonic() + 10
        while ae.active_associations and time.monotonic() < deadline:
            time.sleep(0.2)
        for assoc in ae.active_associations:
            assoc.abort()
        self.stdout.write("Listener stopped.")
