"""A FHIR server on the loopback for the import tests: a search whose results come in two
pages, the first linking to the second with ``next``, serving real resource JSON."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

SEARCH = "/fhir/Patient/p1/$everything"


class _Pages(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, dict[str, Any]]] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/fhir+json")
        self.end_headers()
        self.wfile.write(json.dumps(body or {}).encode())

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def paged_search(entries: list[dict[str, Any]], first_page: int) -> Iterator[str]:
    """Serve ``entries`` (Bundle entries) as a search of two pages, ``first_page`` entries on
    the first; yields the search's address. The server is gone after the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _Pages.pages = {
        SEARCH: {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": f"{base}/fhir/page2"}],
            "entry": entries[:first_page],
        },
        "/fhir/page2": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": entries[first_page:],
        },
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{base}{SEARCH}"
    finally:
        server.shutdown()
        server.server_close()
