"""Only authenticated upload endpoints take large bodies (issue 15, finding 8): an anonymous
client gets 413 from the declared length, before the server reads the body."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token

from active_learning.ml import synthetic
from medloop.security import ANONYMOUS_BODY_BYTES

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024
BOUNDARY = "medloopboundary"


class CountingBody(io.RawIOBase):
    """A request body of ``total`` bytes made on demand, counting what the server reads."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.consumed = 0
        self.head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        remaining = self.total - self.consumed
        count = remaining if size is None or size < 0 else min(size, remaining)
        start = self.consumed
        self.consumed += count
        head = self.head[start : start + count]
        return head + b"x" * (count - len(head))

    def readline(self, size: int | None = -1) -> bytes:
        return self.read(size if size is not None and size >= 0 else 8192)


def _post(path: str, total: int, **headers: str) -> tuple[int, CountingBody]:
    body = CountingBody(total)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(total),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **headers,
    }
    statuses: list[str] = []
    # As Django's test client does: the request must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = WSGIHandler()(environ, lambda status, _headers: statuses.append(status))
        b"".join(response)
        response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return int(statuses[0].split()[0]), body


def test_a_big_anonymous_multipart_post_to_the_token_endpoint_is_413_unread():
    status, body = _post("/api/auth/token/", 300 * MIB)
    assert status == 413
    assert body.consumed == 0


def test_anonymous_and_invalid_token_uploads_are_413_unread(project):
    path = f"/api/projects/{project.pk}/uploads/"
    status, body = _post(path, 20 * MIB)
    assert (status, body.consumed) == (413, 0)
    status, body = _post(path, 20 * MIB, HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert (status, body.consumed) == (413, 0)


def test_a_signed_in_user_sends_large_bodies_only_to_upload_endpoints(project, member):
    lead = member("lena", "lead")
    token, _ = Token.objects.get_or_create(user=lead)
    auth = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=ANONYMOUS_BODY_BYTES * 2):
        status, body = _post(f"/api/projects/{project.pk}/", ANONYMOUS_BODY_BYTES * 3, **auth)
    assert (status, body.consumed) == (413, 0)


def test_valid_credentials_upload_a_large_body(project, member, synthetic_dir, api_for):
    lead = member("lena", "lead")
    item = synthetic.load_manifest(synthetic_dir)[0]
    dicom = (synthetic_dir / item["file"]).read_bytes()
    padding = SimpleUploadedFile("padding.bin", b"\x01" * (ANONYMOUS_BODY_BYTES + 1024))
    url = f"/api/projects/{project.pk}/uploads/"
    by_token = api_for(lead).post(
        url, {"files": [SimpleUploadedFile("a.dcm", dicom), padding]}, format="multipart"
    )
    assert by_token.status_code == 201, by_token.content
    assert by_token.json()["stored"] == 1

    session = Client()
    session.force_login(lead)
    padding.seek(0)
    by_session = session.post(url, {"files": [SimpleUploadedFile("b.dcm", dicom), padding]})
    assert by_session.status_code == 201, by_session.content
    assert by_session.json()["duplicates"] == 1
