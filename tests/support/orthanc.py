"""A real Orthanc PACS (Debian's package, with its DICOMweb plugin) for tests, reachable on
loopback only.

Orthanc 1.10 binds every interface, so it runs inside its own network namespace
(``unshare -n``), where only that namespace's loopback exists. Two socat relays carry its HTTP
and DICOM ports out through UNIX sockets to 127.0.0.1 ports of the host namespace."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import requests

PLUGIN_DIR = "/usr/share/orthanc/plugins"


@dataclass(frozen=True)
class OrthancPeer:
    http_url: str  # e.g. http://127.0.0.1:41234 (DICOMweb under /dicom-web)
    dicom_host: str
    dicom_port: int
    aet: str

    @property
    def dicomweb_url(self) -> str:
        return f"{self.http_url}/dicom-web"


def missing_tools() -> list[str]:
    needed = ["Orthanc", "socat", "unshare", "ip"]
    gone = [tool for tool in needed if shutil.which(tool) is None]
    if not Path(PLUGIN_DIR, "libOrthancDicomWeb.so").exists():
        gone.append("orthanc-dicomweb plugin")
    return gone


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def orthanc_on_loopback(
    workdir: Path, *, aet: str = "ORTHANC", modalities: dict[str, list[object]] | None = None
) -> Iterator[OrthancPeer]:
    """Start Orthanc in a private network namespace; yield how to reach it from here.

    ``modalities`` is Orthanc's DicomModalities (name -> [AET, host, port]); a peer on the host
    is not reachable from inside the namespace, so Orthanc can answer but not push."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "MedLoopTestPACS",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": 8042,
        "DicomPort": 4242,
        "DicomAet": aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "Plugins": [PLUGIN_DIR + "/libOrthancDicomWeb.so"],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
        "DicomModalities": modalities or {},
        "StableAge": 1,
    }
    (workdir / "orthanc.json").write_text(json.dumps(config))
    http_sock, dicom_sock = workdir / "http.sock", workdir / "dicom.sock"
    inner = (
        "ip link set lo up && "
        f"socat UNIX-LISTEN:{http_sock},fork TCP:127.0.0.1:8042 & "
        f"socat UNIX-LISTEN:{dicom_sock},fork TCP:127.0.0.1:4242 & "
        f"exec Orthanc {workdir / 'orthanc.json'}"
    )
    log = (workdir / "orthanc.log").open("wb")
    namespace = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", inner],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    http_port, dicom_port = _free_port(), _free_port()
    relays = [
        subprocess.Popen(
            ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{sock}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for port, sock in ((http_port, http_sock), (dicom_port, dicom_sock))
    ]
    peer = OrthancPeer(f"http://127.0.0.1:{http_port}", "127.0.0.1", dicom_port, aet)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{peer.http_url}/system", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if namespace.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "Orthanc did not start: " + (workdir / "orthanc.log").read_text()[-2000:]
                )
            time.sleep(0.3)
        yield peer
    finally:
        for process in [*relays, namespace]:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*relays, namespace]:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()
