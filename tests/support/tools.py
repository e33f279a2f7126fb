"""External tools the integration tests drive, and what to do when one is missing: under
CI=true the run fails (a missing peer must never turn into a green run); elsewhere it skips."""

from __future__ import annotations

import os
import shutil

import pytest

# dcmtk's tools by absolute path: pynetdicom installs Python scripts of the same names
# (storescu, echoscu) into the virtual environment, which comes first on PATH in `make test`.
DCMTK_BIN = "/usr/bin"


def dcmtk(tool: str) -> str:
    return os.path.join(DCMTK_BIN, tool)


def require(missing: list[str], what: str) -> None:
    """Fail under CI, skip elsewhere, when anything in ``missing`` is absent."""
    if not missing:
        return
    message = f"{what} needs {', '.join(missing)} (see scripts/system-deps.sh)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def missing_dcmtk(*tools: str) -> list[str]:
    return [tool for tool in tools if shutil.which(dcmtk(tool)) is None]
