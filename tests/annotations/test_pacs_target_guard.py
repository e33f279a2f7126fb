"""PACS pulls cannot be pointed at what only the server reaches (issue 15, Low): a DICOMweb URL
on a loopback, link-local or unspecified address is refused unless MEDLOOP_PACS_ALLOWED_NETWORKS
allows it, and redirects to another host, scheme or port are not followed. Real HTTP servers on
loopback play the PACS and the internal service it redirects to."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from annotations.dicom.dicomweb import PacsClient, PacsTargetRefused, check_target
from annotations.models import IngestBatch
from annotations.services import pacs

pytestmark = pytest.mark.django_db
LOOPBACK = ["127.0.0.0/8", "::1/128"]


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Recording(handler):  # type: ignore[valid-type, misc]
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                hits.append(self.path)
                super().do_GET()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _InternalService(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def internal() -> Iterator[_Server]:
    server = _Server(_InternalService)
    yield server
    server.close()


@pytest.fixture
def redirecting_pacs(internal: _Server) -> Iterator[_Server]:
    """A PACS that sends study searches to the internal service, and /moved/ to itself."""
    target = f"http://127.0.0.1:{internal.port}/admin"

    class Redirect(_InternalService):
        def do_GET(self) -> None:
            if self.path.startswith("/same/"):
                self.send_response(302)
                self.send_header("Location", self.path.replace("/same/", "/moved/", 1))
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path.startswith("/moved/"):
                super().do_GET()
            else:
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

    server = _Server(Redirect)
    yield server
    server.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8042/dicom-web",
        "http://localhost:22/",
        "http://[::1]:6379/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:5432/",
        "http://[::ffff:127.0.0.1]:8042/",
        "ftp://pacs.example.org/dicom-web",
    ],
)
def test_loopback_link_local_and_odd_targets_are_refused_by_default(url):
    with pytest.raises(PacsTargetRefused) as refused:
        check_target(url, allowed_networks=[])
    assert refused.value.status_code == 400


def test_a_configured_network_allows_a_pacs_on_loopback_only(internal):
    url = f"http://127.0.0.1:{internal.port}/dicom-web"
    check_target(url, allowed_networks=LOOPBACK)
    with pytest.raises(PacsTargetRefused):
        check_target("http://169.254.169.254/", allowed_networks=LOOPBACK)


def test_a_pull_from_a_loopback_url_is_refused_before_any_request(project, internal):
    project.dicomweb_url = f"http://127.0.0.1:{internal.port}/dicom-web"
    project.save(update_fields=["dicomweb_url"])
    with (
        override_settings(MEDLOOP_PACS_ALLOWED_NETWORKS=[]),
        pytest.raises(PacsTargetRefused, match="MEDLOOP_PACS_ALLOWED_NETWORKS"),
    ):
        pacs.pull_studies(project=project, query={"PatientID": "X"})
    assert internal.hits == [] and not IngestBatch.objects.exists()


def test_redirects_to_another_port_are_not_followed(project, redirecting_pacs, internal):
    project.dicomweb_url = f"http://127.0.0.1:{redirecting_pacs.port}/dicom-web"
    project.save(update_fields=["dicomweb_url"])
    with pytest.raises(PacsTargetRefused, match="redirected to another host"):
        pacs.pull_studies(project=project, query={"PatientID": "X"})
    assert redirecting_pacs.hits and internal.hits == []
    assert not IngestBatch.objects.exists()


def test_redirects_within_the_pacs_are_followed(redirecting_pacs):
    client = PacsClient(
        f"http://127.0.0.1:{redirecting_pacs.port}/same/dicom-web", allowed_networks=LOOPBACK
    )
    assert client.find_studies({"PatientID": "X"}, limit=5) == []
    assert any(path.startswith("/moved/") for path in redirecting_pacs.hits)
