"""Where a marker shows up after it was sent in: every stored file, every database row (as
dumpdata writes them), the API's answers and the logs. Shared by the every-way-in marker tests
(DICOM and FHIR)."""

from __future__ import annotations

import io
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

from annotations.models import Project
from annotations.services.errors import DomainError
from annotations.services.exports import FORMATS
from tests.support.markers import leaks


def marker_leaks(
    api, project: Project, marker: str, *, urls: list[str], logs: io.StringIO
) -> dict[str, list[str]]:
    """{where: what} for every place the marker (or its date) appears: files under
    STORAGE_DIR, database rows, GET answers of the project's pages, exports, ingest batches and
    ``urls`` (each must answer 200, but an export the project cannot have, e.g. NIfTI volumes of
    a radiograph project, its 4xx), and the captured ``logs``."""
    problems: dict[str, list[str]] = {}
    for path in Path(settings.STORAGE_DIR).rglob("*"):
        if path.is_file() and leaks(path.read_bytes(), marker):
            problems[f"file {path}"] = leaks(path.read_bytes(), marker)
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    if leaks(dump.getvalue().encode(), marker):
        problems["database rows"] = leaks(dump.getvalue().encode(), marker)
    addresses = [
        f"/api/projects/{project.pk}/",
        f"/api/projects/{project.pk}/cases/",
        f"/api/projects/{project.pk}/ingest-batches/",
        f"/api/projects/{project.pk}/audit-events/",
        *(f"/api/projects/{project.pk}/exports/{name}/" for name in FORMATS),
        *urls,
    ]
    refused = set()
    for name, fmt in FORMATS.items():
        try:
            if fmt.check is not None:
                fmt.check(project, None)
        except DomainError:
            refused.add(f"/api/projects/{project.pk}/exports/{name}/")
    batches = api.get(f"/api/projects/{project.pk}/ingest-batches/").json()
    for batch in batches.get("results", batches) if isinstance(batches, dict) else batches:
        addresses.append(f"/api/ingest-batches/{batch['id']}/")
    for url in addresses:
        response = api.get(url)
        expected = range(400, 500) if url in refused else (200,)
        assert response.status_code in expected, (url, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        if leaks(body, marker):
            problems[f"GET {url}"] = leaks(body, marker)
    if leaks(logs.getvalue().encode(), marker):
        problems["logs"] = leaks(logs.getvalue().encode(), marker)
    return problems
