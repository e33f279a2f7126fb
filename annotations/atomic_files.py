"""Writing files so that a reader never sees a partial one (pure Python, no Django)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes | memoryview, *, suffix: str = "") -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it into place
    (``os.replace`` is atomic on POSIX); on any failure the temporary file is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
