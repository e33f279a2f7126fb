"""Where one annotator's loop (POST next-case, then POST submit) spends its time, for MedLoop and
for the floor (bench/queue_floor.py), side by side in one run on the same prepared database.

Each system runs in its own process, its WSGI application called in-process with the same
requests gunicorn would pass it (no network, no server: what is left is the application's own
work). Printed:
- CPU per loop: the process's CPU time (``time.process_time``) and, on PostgreSQL, the CPU time
  of the database backend serving it (/proc/<pid>/stat), the minimum over --blocks blocks of
  --loops loops. CPU time, unlike wall time, is not what other jobs on a shared machine take
  from it (they still slow it a little through the caches), and the minimum of a few blocks
  drops what they did add.
- Where the time goes: a pyinstrument profile of --loops more loops, each sample charged to the
  innermost phase on its stack (middleware, authentication, throttling, DRF dispatch, access
  checks, queue query, working copy and submit, audit, serialisation and rendering, commit),
  in milliseconds per call (wall time as sampled): "py", the Python time, and "db", the time
  in the database driver, waiting on the database included (on a loaded machine the waits
  grow most; read the CPU figures above for what a loop costs).

    python bench/request_profile.py [--backend postgres|sqlite] [--loops 200] [--blocks 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from queue_load import REPO, _medloop_env, _pg_database

REPORT = "Nodule in the right upper zone."

# Phases: the first (innermost) frame on a sample's stack that matches one names its phase.
# (path fragment, function name or None for any)
PHASES: list[tuple[str, list[tuple[str, str | None]]]] = [
    ("begin/commit", [("django/db/transaction.py", None)]),
    ("audit", [("annotations/services/audit.py", None), ("queue_floor.py", "_audit")]),
    ("queue query and lease", [("annotations/services/queue.py", None)]),
    ("ethics approval and consent", [("annotations/services/ethics.py", None),
                                     ("annotations/services/consent.py", None)]),
    ("working copy and submit", [("annotations/services/annotate.py", None),
                                 ("annotations/services/", None)]),
    ("access: project, case, roles", [("annotations/access.py", None),
                                      ("annotations/permissions.py", None),
                                      ("queue_floor.py", "_is_annotator")]),
    ("case with its context", [("annotations/selectors", None)]),
    ("serialisation and rendering", [("annotations/api/representations.py", None),
                                     ("rest_framework/renderers.py", None),
                                     ("rest_framework/response.py", None),
                                     ("django/http/response.py", None)]),
    ("input validation", [("rest_framework/serializers.py", None),
                          ("rest_framework/fields.py", None),
                          ("annotations/api/serializers", None)]),
    ("authentication", [("medloop/accounts/authentication.py", None),
                        ("rest_framework/authentication.py", None),
                        ("rest_framework/authtoken", None), ("queue_floor.py", "_user")]),
    ("throttling", [("medloop/throttling.py", None), ("rest_framework/throttling.py", None),
                    ("django/core/cache", None)]),
    ("the view's own code", [("annotations/api/", None), ("queue_floor.py", None)]),
    ("DRF dispatch, negotiation, parsing", [("rest_framework/", None), ("medloop/parsers", None),
                                            ("medloop/api_errors", None)]),
    ("middleware", [("django/middleware/", None), ("/middleware.py", None),
                    ("medloop/request_client.py", None), ("medloop/security.py", None),
                    ("medloop/cache_control.py", None), ("medloop/sessions.py", None),
                    ("django/contrib/sessions", None), ("axes/", None), ("django_otp/", None)]),
    ("Django handler, URL resolving", [("django/core/handlers", None), ("django/urls", None)]),
]  # fmt: skip
IN_DRIVER = ("/psycopg/", "/psycopg_c/", "/psycopg_binary/", "/sqlite3/")


def _phase(frame: Any) -> str:
    while frame is not None:
        path = (frame.file_path or "").replace("\\", "/")
        for name, rules in PHASES:
            if any(part in path and (fn is None or fn == frame.function) for part, fn in rules):
                return name
        frame = frame.parent
    return "other"


def _in_driver(frame: Any) -> bool:
    while frame is not None:
        if any(part in (frame.file_path or "") for part in IN_DRIVER):
            return True
        frame = frame.parent
    return False


def breakdown(root: Any) -> dict[str, list[float]]:
    """Seconds per phase of a pyinstrument frame tree: [total, of which in the driver]."""
    out: dict[str, list[float]] = {}
    stack = [root]
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        own = frame.time - sum(child.time for child in frame.children)
        if own <= 0:
            continue
        entry = out.setdefault(_phase(frame), [0.0, 0.0])
        entry[0] += own
        if _in_driver(frame):
            entry[1] += own
    return out


# --- the child: one system, in-process -------------------------------------------------------


def _application(system: str) -> Callable[..., Any]:
    if system == "medloop":
        sys.path.insert(0, str(REPO))
        from medloop.wsgi import application
    else:
        from queue_floor import application
    return application


def _caller(application: Callable[..., Any], token: str) -> Callable[..., tuple[int, bytes]]:
    def call(path: str, body: bytes = b"", **headers: str) -> tuple[int, bytes]:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_USER_AGENT": "bench/request_profile", "HTTP_ACCEPT": "application/json",
            "HTTP_AUTHORIZATION": f"Token {token}", "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
            **{"HTTP_" + k.upper(): v for k, v in headers.items()},
        }  # fmt: skip
        status: list[str] = []
        chunks = application(environ, lambda s, h, exc=None: status.append(s))
        try:
            content = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()  # request_finished: Django's end-of-request connection handling
        return int(status[0].split()[0]), content

    return call


def _one_loop(call: Callable[..., tuple[int, bytes]], project: int, between: Any = None) -> None:
    code, content = call(f"/api/projects/{project}/next-case/")
    if code != 200:
        raise SystemExit(f"next-case answered {code}: {content[:300]!r}")
    if between is not None:
        between()
    case = json.loads(content)
    instance = case["series"][0]["instances"][0]["id"]
    body = json.dumps({
        "findings": {"nodule": "present"}, "report": {"impression": REPORT},
        "boxes": [{"instance_id": instance, "x": 10, "y": 10, "width": 20, "height": 20,
                   "finding": "nodule"}],
    }).encode()  # fmt: skip
    code, content = call(
        f"/api/cases/{case['id']}/annotation/submit/", body, if_match=case["annotation"]["etag"]
    )
    if code != 200:
        raise SystemExit(f"submit answered {code}: {content[:300]!r}")


def _backend_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def child(system: str, project: int, token: str, loops: int, blocks: int) -> dict[str, Any]:
    from pyinstrument import Profiler

    application = _application(system)
    call = _caller(application, token)
    for _ in range(20):  # warm: imports, compiled queries, content types, connection
        _one_loop(call, project)
    from django.db import connection

    def backend_pid() -> int | None:
        if connection.vendor != "postgresql":
            return None
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return int(cursor.fetchone()[0])

    measured = []
    for _ in range(blocks):
        pid = backend_pid()
        cpu, wall, db = time.process_time(), time.perf_counter(), _backend_cpu(pid)
        for _ in range(loops):
            _one_loop(call, project)
        if backend_pid() != pid:
            raise SystemExit("the database connection changed during a block: fewer --loops")
        measured.append(
            {
                "app_cpu_ms": 1000 * (time.process_time() - cpu) / loops,
                "db_cpu_ms": 1000 * (_backend_cpu(pid) - db) / loops,
                "wall_ms": 1000 * (time.perf_counter() - wall) / loops,
            }
        )
    handing, submitting = Profiler(interval=0.001), Profiler(interval=0.001)

    def profiled_call(path: str, body: bytes = b"", **headers: str) -> tuple[int, bytes]:
        profiler = submitting if path.endswith("/submit/") else handing
        profiler.start()
        try:
            return call(path, body, **headers)
        finally:
            profiler.stop()

    for _ in range(loops):
        _one_loop(profiled_call, project)
    return {
        "blocks": measured,
        "phases": {
            "next-case": breakdown(handing.last_session.root_frame()),
            "submit": breakdown(submitting.last_session.root_frame()),
        },
        "loops": loops,
    }


# --- the parent: prepare, run both, print --------------------------------------------------


def _best(blocks: list[dict[str, float]], key: str) -> float:
    return min(b[key] for b in blocks)


def _spread(blocks: list[dict[str, float]], key: str) -> str:
    values = [b[key] for b in blocks]
    return f"{min(values):.2f}-{max(values):.2f}"


def print_report(backend: str, results: dict[str, dict[str, Any]]) -> None:
    systems = list(results)
    print(f"\nCPU per loop on {backend} (min over blocks; range in brackets):")
    print(f"{'system':<10}{'app CPU ms':>12}{'db CPU ms':>11}{'total CPU':>11}{'wall ms':>9}"
          f"   {'app CPU range':<15}")  # fmt: skip
    totals = {}
    for system in systems:
        blocks = results[system]["blocks"]
        app, db = _best(blocks, "app_cpu_ms"), _best(blocks, "db_cpu_ms")
        totals[system] = app + db
        wall = _best(blocks, "wall_ms")
        print(f"{system:<10}{app:>12.2f}{db:>11.2f}{app + db:>11.2f}{wall:>9.2f}   "
              f"{_spread(blocks, 'app_cpu_ms'):<15}")  # fmt: skip
    if "medloop" in totals and "floor" in totals and totals["floor"] > 0:
        print(f"MedLoop's CPU per loop is {totals['medloop'] / totals['floor']:.1f}x the floor's; "
              f"the floor's loop is {100 * totals['floor'] / totals['medloop']:.0f} % of "
              "MedLoop's.")  # fmt: skip
    for call in ("next-case", "submit"):
        names = [n for n, _ in PHASES] + ["other"]
        print(f"\nWhere {call}'s time goes on {backend} (ms per call, pyinstrument samples; "
              "py: Python, db: in the database driver, waiting included):")  # fmt: skip
        print(f"{'phase':<37}" + "".join(f"{s + ' py':>13}{'db':>7}" for s in systems))
        sums = {s: [0.0, 0.0] for s in systems}
        for name in names:
            cells = []
            for system in systems:
                total, driver = results[system]["phases"][call].get(name, [0.0, 0.0])
                loops = results[system]["loops"]
                sums[system][0] += total / loops
                sums[system][1] += driver / loops
                python = 1000 * (total - driver) / loops
                cells.append(f"{python:>13.2f}{1000 * driver / loops:>7.2f}")
            if any(results[s]["phases"][call].get(name) for s in systems):
                print(f"{name:<37}" + "".join(cells))
        print(f"{'total':<37}" + "".join(f"{1000 * (t - d):>13.2f}{1000 * d:>7.2f}"
                                          for t, d in sums.values()))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--loops", type=int, default=200, help="loops per block and profile")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks (the minimum counts)")
    parser.add_argument("--child", nargs=3, metavar=("SYSTEM", "PROJECT", "TOKEN"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.child:
        system, project, token = args.child
        print(json.dumps(child(system, int(project), token, args.loops, args.blocks)))
        return
    var_dir = Path(tempfile.mkdtemp(prefix=f"medloop-profile-{args.backend}-"))
    if args.backend == "postgres":
        database_url = _pg_database("medloop_bench_profile")
    else:
        database_url = f"sqlite:///{var_dir / 'bench.sqlite3'}"
    env = _medloop_env(database_url, var_dir)
    cases = 2 * (args.loops * (args.blocks + 1) + 20) + 100
    prepared = subprocess.run(
        [sys.executable, str(REPO / "bench" / "queue_load.py"), "--prepare", str(cases), "2"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if prepared.returncode != 0:
        raise SystemExit(f"preparing the database failed:\n{prepared.stderr[-3000:]}")
    setup = json.loads(prepared.stdout.strip().splitlines()[-1])
    load = os.getloadavg()
    results = {}
    for index, system in enumerate(("medloop", "floor")):
        done = subprocess.run(
            [sys.executable, __file__, "--loops", str(args.loops), "--blocks", str(args.blocks),
             "--child", system, str(setup["project"]), setup["tokens"][index]],
            cwd=REPO / "bench", env=env, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"{system} failed:\n{done.stderr[-3000:]}")
        results[system] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{args.loops} loops x {args.blocks} blocks per system, one annotator, in-process WSGI; "
          f"load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after.")  # fmt: skip
    print_report(args.backend, results)
    print(json.dumps({"backend": args.backend, "cpu": {
        s: {k: statistics.median(b[k] for b in r["blocks"]) for k in r["blocks"][0]}
        for s, r in results.items()}}))  # fmt: skip


if __name__ == "__main__":
    main()
