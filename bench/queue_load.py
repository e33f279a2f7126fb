"""Case hand-out under load: closed-loop annotators against production servers (gunicorn, 2
workers x 4 gthread threads) over loopback, on PostgreSQL and on SQLite.

Each client is a different annotator with its own API token, looping with no pause: POST
next-case (the case, its clinical context and images, and the annotator's working copy with
its ETag), then POST submit (findings, one box and the report, If-Match). Printed per system,
database and client count: loops/s (both calls answered), p50/p95/p99 of the hand-out call,
errors, and cases handed to two annotators at once ("double", must be 0).

Systems, all under the same gunicorn settings on the same database server:
- medloop: MedLoop's API (medloop.settings.production);
- floor: bench/queue_floor.py, a bare Django app doing the same indexed reads and writes in raw
  SQL on MedLoop's tables (no middleware, DRF or ORM): the most a Django server can do here;
- label-studio (--vs-label-studio, PostgreSQL only): Label Studio 1.23.2 installed into
  var/label-studio-1.23.2/ on first use, looping GET /api/projects/{id}/next/ then POST
  /api/tasks/{id}/annotations/ (a rectangle and a text area); printed side by side with
  MedLoop's figures and their ratios.

    python bench/queue_load.py [--seconds 15] [--clients 1,10,50] [--backends postgres,sqlite]
                               [--no-floor] [--vs-label-studio]
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
LABEL_STUDIO_VERSION = "1.23.2"
LABEL_STUDIO_VENV = REPO / "var" / f"label-studio-{LABEL_STUDIO_VERSION}"
REPORT = "Nodule in the right upper zone."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_admin() -> Any:
    import psycopg

    admin = PG_ADMIN_URL.replace("postgres://", "postgresql://", 1) + "/postgres"
    return psycopg.connect(admin, autocommit=True)


def _pg_database(name: str, template: str | None = None) -> str:
    """Drop and create database ``name`` (a copy of ``template``); return its URL."""
    with _pg_admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return f"{PG_ADMIN_URL}/{name}"


def _pg_exists(name: str) -> bool:
    with _pg_admin() as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return found.fetchone() is not None


def _medloop_env(database_url: str, var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "medloop.settings.production",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_SSL_REDIRECT": "false",  # plain HTTP over loopback (production sits behind TLS)
        "DATABASE_URL": database_url,
        "MEDLOOP_VAR_DIR": str(var_dir),
        "MEDLOOP_LOG_LEVEL": "WARNING",
        # A closed loop with no pause makes one annotator send far more than a person could; the
        # throttle still counts every request, at a rate no bench client reaches.
        "MEDLOOP_API_RATE_USER": "1000000/min",
    }


def start_gunicorn(
    app: str,
    env: dict[str, str],
    *,
    workers: int,
    threads: int,
    python: str = sys.executable,
    cwd: Path = REPO,
    health: str = "/health/",
) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn (gthread) bound to a free port on 127.0.0.1 only; returns the process and its
    base URL once ``health`` answers. Keep-alive outlasts any client's pause: an idle connection
    closed by the server just as a client reuses it is the client's error, not the server's."""
    port = _free_port()
    server = subprocess.Popen(
        [python, "-m", "gunicorn", app, "--workers", str(workers), "--worker-class", "gthread",
         "--threads", str(threads), "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
         "--keep-alive", "75", "--graceful-timeout", "5"],
        cwd=cwd, env=env, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"{app} did not start (exit code {server.returncode}).")
        try:
            if requests.get(base + health, timeout=2).status_code < 500:
                return server, base
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop_gunicorn(server)
    raise SystemExit(f"{app} did not answer {health} within a minute.")


def stop_gunicorn(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=20)


def prepare(cases: int, annotators: int) -> None:
    """(Run inside the target environment.) Migrate, then create one project, ``annotators``
    annotator accounts with API tokens and ``cases`` cases sharing one ingested image."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from active_learning.ml import synthetic
    from annotations.models import Case, Instance, Patient, Series, Study
    from annotations.services import ingest, projects

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import loop_support

    call_command("migrate", interactive=False, verbosity=0)
    project = projects.create_project(name="bench", created_by=None, validation_fraction=0.0)
    loop_support.record_bench_approval(project)  # production's default: the hand-out checks it
    with tempfile.TemporaryDirectory() as tmp:
        generated = synthetic.generate_dataset(seed=1, count=1, out_dir=Path(tmp), size=256)
        first = ingest.ingest_dicom_path(
            project=project, path=Path(tmp) / synthetic.file_name(generated[0])
        )
    template: Instance = first.instance
    patient = Patient.objects.create(project=project, pseudonym="BENCH")
    studies = Study.objects.bulk_create(
        Study(project=project, patient=patient, study_instance_uid=f"2.25.{9000 + i}")
        for i in range(cases)
    )
    series = Series.objects.bulk_create(
        Series(study=s, series_instance_uid=f"{s.study_instance_uid}.1", modality="DX")
        for s in studies
    )
    fields = {
        f: getattr(template, f)
        for f in (
            "sop_class_uid",
            "file_path",
            "sha256",
            "size_bytes",
            "rows",
            "columns",
            "transfer_syntax_uid",
            "photometric_interpretation",
        )
    }
    Instance.objects.bulk_create(
        Instance(series=s, sop_instance_uid=f"{s.series_instance_uid}.1", **fields) for s in series
    )
    Case.objects.bulk_create(Case(project=project, study=s, indication="Cough") for s in studies)
    tokens = []
    for i in range(annotators):
        user = get_user_model().objects.create_user(username=f"annotator{i}")
        projects.add_member(project=project, user=user, role="annotator", added_by=None)
        tokens.append(Token.objects.create(user=user).key)
    print(json.dumps({"project": project.pk, "tokens": tokens}))


# --- the clients ----------------------------------------------------------------------------


class Client(threading.Thread):
    """One annotator in a closed loop: ``step`` is one loop (hand-out, then submit)."""

    def __init__(self, base: str, project: int, token: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base, self.project, self.stop = base, project, stop
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.next_s: list[float] = []
        self.loops = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.cases: list[int] = []

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        try:
            response = self.session.request(method, self.base + path, timeout=120, **kwargs)
        except requests.RequestException as exc:
            self.errors[type(exc).__name__] += 1
            return None
        if response.status_code >= 400:
            self.errors[f"{method} {response.status_code}"] += 1
            return None
        return response

    def timed(self, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        started = time.perf_counter()
        response = self.call(method, path, **kwargs)
        self.next_s.append(time.perf_counter() - started)
        return response

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.step():
                return

    def step(self) -> bool:
        raise NotImplementedError


class MedLoopClient(Client):
    """MedLoop's API (and the floor, which answers the same addresses)."""

    def step(self) -> bool:
        nxt = self.timed("POST", f"/api/projects/{self.project}/next-case/")
        if nxt is None:
            return True
        if nxt.status_code == 204:
            self.errors["queue empty"] += 1
            return False
        case = nxt.json()
        self.cases.append(case["id"])
        instance = case["series"][0]["instances"][0]["id"]
        box = {"instance_id": instance, "x": 10, "y": 10, "width": 20, "height": 20,
               "finding": "nodule"}  # fmt: skip
        done = self.call(
            "POST",
            f"/api/cases/{case['id']}/annotation/submit/",
            json={"findings": {"nodule": "present"}, "boxes": [box],
                  "report": {"impression": REPORT}},
            headers={"If-Match": case["annotation"]["etag"]},
        )  # fmt: skip
        if done is not None and not self.stop.is_set():
            self.loops += 1
        return True


class LabelStudioClient(Client):
    """Label Studio's equivalent loop: the next task, then an annotation with a rectangle and
    a text area (what its labelling page sends)."""

    def step(self) -> bool:
        nxt = self.timed("GET", f"/api/projects/{self.project}/next/")
        if nxt is None:
            if self.errors.get("GET 404"):  # Label Studio answers 404 when nothing is left
                self.errors["queue empty"] += 1
                return False
            return True
        task = nxt.json()
        self.cases.append(task["id"])
        result = [
            {"id": "box1", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
             "original_width": 256, "original_height": 256, "image_rotation": 0,
             "value": {"x": 3.9, "y": 3.9, "width": 7.8, "height": 7.8, "rotation": 0,
                       "rectanglelabels": ["nodule"]}},
            {"id": "text1", "type": "textarea", "from_name": "report", "to_name": "image",
             "value": {"text": [REPORT]}},
        ]  # fmt: skip
        done = self.call(
            "POST",
            f"/api/tasks/{task['id']}/annotations/?project={self.project}",
            json={"result": result, "lead_time": 1.0, "project": self.project},
        )
        if done is not None and not self.stop.is_set():
            self.loops += 1
        return True


CLIENTS: dict[str, type[Client]] = {"medloop": MedLoopClient, "label-studio": LabelStudioClient}


def client_process(
    kind: str,
    base: str,
    project: int,
    tokens: list[str],
    start_at: float,
    seconds: float,
    results: multiprocessing.Queue,
) -> None:
    """One load-generating process: a thread per annotator, so the generator's own GIL
    does not become the bottleneck being measured."""
    stop = threading.Event()
    threads = [CLIENTS[kind](base, project, token, stop) for token in tokens]
    time.sleep(max(0.0, start_at - time.time()))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    results.put(
        {
            "latencies": [v for t in threads for v in t.next_s],
            "loops": sum(t.loops for t in threads),
            "errors": dict(sum((t.errors for t in threads), collections.Counter())),
            "cases": [c for t in threads for c in t.cases],
        }
    )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
        if len(values) > 1
        else values[0]
    )


def run_rounds(
    system: str,
    backend: str,
    kind: str,
    base: str,
    project: int,
    tokens: list[str],
    clients: list[int],
    seconds: float,
    client_processes: int,
) -> list[dict[str, Any]]:
    """One round per client count, each with annotators that have not worked yet."""
    rows = []
    token_pool = iter(tokens)
    for count in clients:
        round_tokens = [next(token_pool) for _ in range(count)]
        processes = min(count, client_processes)
        queue: multiprocessing.Queue = multiprocessing.Queue()
        start_at = time.time() + 1.0
        workers = [
            multiprocessing.Process(
                target=client_process,
                args=(kind, base, project, round_tokens[i::processes], start_at, seconds, queue),
            )
            for i in range(processes)
        ]
        for worker in workers:
            worker.start()
        parts = [queue.get(timeout=seconds + 300) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        latencies = [v for part in parts for v in part["latencies"]]
        handed = collections.Counter(c for part in parts for c in part["cases"])
        errors: collections.Counter[str] = collections.Counter()
        for part in parts:
            errors.update(part["errors"])
        rows.append(
            {
                "system": system,
                "backend": backend,
                "clients": count,
                "loops_per_s": sum(part["loops"] for part in parts) / seconds,
                "next_p50_ms": 1000 * _percentile(latencies, 50),
                "next_p95_ms": 1000 * _percentile(latencies, 95),
                "next_p99_ms": 1000 * _percentile(latencies, 99),
                "errors": dict(errors),
                "double_handed": sum(1 for n in handed.values() if n > 1),
                "cases_served": len(handed),
            }
        )
        print(_row_line(rows[-1]), flush=True)
        if _error_count(rows[-1]):
            print(f"  errors: {rows[-1]['errors']}", flush=True)
    return rows


# --- the systems ----------------------------------------------------------------------------


def run_medloop(
    backend: str, clients: list[int], seconds: float, args: argparse.Namespace, floor: bool
) -> list[dict[str, Any]]:
    """MedLoop (and, with ``floor``, then the floor app) on one freshly prepared database."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"medloop-bench-{backend}-"))
    if backend == "postgres":
        database_url = _pg_database("medloop_bench")
    else:
        database_url = f"sqlite:///{var_dir / 'bench.sqlite3'}"
    env = _medloop_env(database_url, var_dir)
    rounds = 2 if floor else 1
    # Enough cases that no round empties the queue (each loop takes one case).
    needed = int(max(clients) * seconds * 8 * rounds) + 2000
    prepared = subprocess.run(
        [sys.executable, __file__, "--prepare", str(needed), str(rounds * sum(clients))],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    setup = json.loads(prepared.stdout.strip().splitlines()[-1])
    tokens: list[str] = setup["tokens"]
    rows = []
    systems: list[tuple[str, str, Path]] = [("medloop", "medloop.wsgi", REPO)]
    if floor:
        systems.append(("floor", "queue_floor:application", REPO / "bench"))
    for index, (system, app, cwd) in enumerate(systems):
        server, base = start_gunicorn(app, env, workers=args.workers, threads=args.threads, cwd=cwd)
        try:
            rows += run_rounds(
                system, backend, "medloop", base, setup["project"],
                tokens[index * sum(clients):], clients, seconds, args.client_processes,
            )  # fmt: skip
        finally:
            stop_gunicorn(server)
    return rows


def install_label_studio() -> Path:
    """Label Studio's own virtual environment under var/, made on first use (PyPI)."""
    python = LABEL_STUDIO_VENV / "bin" / "python"
    ready = LABEL_STUDIO_VENV / ".installed"
    if ready.exists():
        return python
    print(f"Installing Label Studio {LABEL_STUDIO_VERSION} into {LABEL_STUDIO_VENV} ...",
          flush=True)  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", str(LABEL_STUDIO_VENV)], check=True)
    gunicorn = next(
        line.split('"')[1]
        for line in (REPO / "pyproject.toml").read_text().splitlines()
        if line.strip().startswith('"gunicorn==')
    )  # the same gunicorn as MedLoop's
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet",
         f"label-studio=={LABEL_STUDIO_VERSION}", gunicorn],
        check=True,
    )  # fmt: skip
    ready.touch()
    return python


def run_label_studio(clients: list[int], seconds: float, args: argparse.Namespace) -> list[dict]:
    python = install_label_studio()
    site = Path(
        subprocess.run(
            [str(python), "-c", "import label_studio, os; "
             "print(os.path.dirname(label_studio.__file__))"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    pg = urlsplit(PG_ADMIN_URL)
    data_dir = Path(tempfile.mkdtemp(prefix="label-studio-bench-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))},
        "DJANGO_SETTINGS_MODULE": "core.settings.label_studio",
        "DJANGO_DB": "default",
        "POSTGRE_NAME": "label_studio_bench",
        "POSTGRE_USER": pg.username or "postgres",
        "POSTGRE_PASSWORD": pg.password or "",
        "POSTGRE_HOST": pg.hostname or "127.0.0.1",
        "POSTGRE_PORT": str(pg.port or 5432),
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
    }
    side = [str(python), str(REPO / "bench" / "label_studio_side.py")]
    # Label Studio's migrations take minutes: they run once into a template database, and each
    # run starts from a copy of it.
    template = f"label_studio_{LABEL_STUDIO_VERSION.replace('.', '_')}_migrated"
    if not _pg_exists(template):
        _pg_database(template)
        migrated = subprocess.run(
            [*side, "migrate"], cwd=site, env={**env, "POSTGRE_NAME": template},
            capture_output=True, text=True,
        )  # fmt: skip
        if migrated.returncode != 0:
            with _pg_admin() as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")
            raise SystemExit("Label Studio's migrations failed:\n" + migrated.stderr[-3000:])
    _pg_database("label_studio_bench", template=template)
    prepared = subprocess.run(
        [*side, "prepare", str(sum(clients))], cwd=site, env=env, capture_output=True, text=True
    )
    if prepared.returncode != 0:
        raise SystemExit("Label Studio's setup failed:\n" + prepared.stderr[-3000:])
    setup = json.loads(prepared.stdout.strip().splitlines()[-1])
    server, base = start_gunicorn(
        "core.wsgi:application", env, workers=args.workers, threads=args.threads,
        python=str(python), cwd=site, health="/health/",
    )  # fmt: skip
    try:
        # Label Studio is slower: fewer tasks than MedLoop's cases suffice for every round.
        tasks = int(60 * seconds * len(clients)) + 500
        admin = requests.Session()
        admin.headers["Authorization"] = f"Token {setup['admin']}"
        for start in range(0, tasks, 1000):
            batch = [{"image": f"/data/upload/bench/{i}.png"}
                     for i in range(start, min(tasks, start + 1000))]  # fmt: skip
            answer = admin.post(f"{base}/api/projects/{setup['project']}/import", json=batch,
                                timeout=600)  # fmt: skip
            answer.raise_for_status()
        return run_rounds(
            "label-studio", "postgres", "label-studio", base, setup["project"],
            setup["tokens"], clients, seconds, args.client_processes,
        )  # fmt: skip
    finally:
        stop_gunicorn(server)


# --- output ---------------------------------------------------------------------------------

HEADER = (
    f"{'system':<13}{'backend':<9}{'clients':>8}{'loops/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
    f"{'p99 ms':>9}{'errors':>8}{'double':>8}"
)


def _error_count(r: dict[str, Any]) -> int:
    return sum(v for k, v in r["errors"].items() if k != "queue empty")


def _row_line(r: dict[str, Any]) -> str:
    return (
        f"{r['system']:<13}{r['backend']:<9}{r['clients']:>8}{r['loops_per_s']:>9.1f}"
        f"{r['next_p50_ms']:>9.1f}{r['next_p95_ms']:>9.1f}{r['next_p99_ms']:>9.1f}"
        f"{_error_count(r):>8}{r['double_handed']:>8}"
    )


def _ratio(top: float, bottom: float, width: int, suffix: str, why: list[str]) -> str:
    """``top / bottom`` right-aligned in ``width`` with ``suffix``; "-" when there is nothing
    to divide by (a system that answered no loop, no latency), noted once in ``why``."""
    if bottom > 0 and top == top and bottom == bottom:  # not NaN
        return f"{top / bottom:>{width - len(suffix)}.1f}{suffix}"
    note = '"-": no ratio where a system completed no loop (see its errors) or timed no call.'
    if note not in why:
        why.append(note)
    return f"{'-':>{width}}"


def _find(rows: list[dict], system: str, backend: str, clients: int) -> dict | None:
    wanted = (system, backend, clients)
    return next((r for r in rows if (r["system"], r["backend"], r["clients"]) == wanted), None)


def comparisons(rows: list[dict], clients: list[int]) -> list[str]:
    """MedLoop against the floor (share of its loops/s) and against Label Studio (ratios),
    for each database and client count both were run on."""
    lines: list[str] = []
    why: list[str] = []
    floor_pairs = [
        (r, f) for r in rows if r["system"] == "medloop"
        if (f := _find(rows, "floor", r["backend"], r["clients"]))
    ]  # fmt: skip
    if floor_pairs:
        lines += ["", "MedLoop against the floor (same server settings and database):",
                  f"{'backend':<9}{'clients':>8}{'MedLoop loops/s':>17}{'floor loops/s':>15}"
                  f"{'MedLoop/floor':>15}{'p95 MedLoop':>13}{'p95 floor':>11}"]  # fmt: skip
        for r, f in floor_pairs:
            lines.append(
                f"{r['backend']:<9}{r['clients']:>8}{r['loops_per_s']:>17.1f}"
                f"{f['loops_per_s']:>15.1f}"
                f"{_ratio(100 * r['loops_per_s'], f['loops_per_s'], 15, '%', why)}"
                f"{r['next_p95_ms']:>13.1f}{f['next_p95_ms']:>11.1f}"
            )
    ls_pairs = [
        (r, s) for r in rows if r["system"] in ("medloop", "floor")
        if (s := _find(rows, "label-studio", "postgres", r["clients"]))
        and r["backend"] == "postgres"
    ]  # fmt: skip
    if ls_pairs:
        lines += ["", f"Side by side with Label Studio {LABEL_STUDIO_VERSION} (PostgreSQL, same "
                  "gunicorn settings; ratios: loops/s over Label Studio's, Label Studio's p95 "
                  "over ours):",
                  f"{'system':<9}{'clients':>8}{'LS loops/s':>12}{'LS p95 ms':>11}{'loops/s':>9}"
                  f"{'p95 ms':>9}{'x loops/s':>11}{'x p95':>8}"]  # fmt: skip
        for r, s in ls_pairs:
            lines.append(
                f"{r['system']:<9}{r['clients']:>8}{s['loops_per_s']:>12.1f}"
                f"{s['next_p95_ms']:>11.1f}{r['loops_per_s']:>9.1f}{r['next_p95_ms']:>9.1f}"
                f"{_ratio(r['loops_per_s'], s['loops_per_s'], 11, 'x', why)}"
                f"{_ratio(s['next_p95_ms'], r['next_p95_ms'], 8, 'x', why)}"
            )
    sqlite = [r for r in rows if r["system"] == "medloop" and r["backend"] == "sqlite"]
    ls_sqlite = [(r, s) for r in sqlite if (s := _find(rows, "label-studio", "postgres",
                                                          r["clients"]))]  # fmt: skip
    for r, s in ls_sqlite:
        ratio = _ratio(r["loops_per_s"], s["loops_per_s"], 0, "x", why).strip()
        lines.append(
            f"MedLoop on SQLite, {r['clients']} clients: {ratio} Label Studio's loops/s "
            "(Label Studio on PostgreSQL)"
        )
    return lines + why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="load-generator processes the clients are spread over",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the bare-Django floor")
    parser.add_argument(
        "--vs-label-studio",
        action="store_true",
        help=f"also run Label Studio {LABEL_STUDIO_VERSION} (installed into var/ on first use)",
    )
    parser.add_argument(
        "--prepare", nargs=2, type=int, metavar=("CASES", "ANNOTATORS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.prepare:
        sys.path.insert(0, str(REPO))
        prepare(*args.prepare)
        return
    clients = [int(c) for c in args.clients.split(",")]
    print(f"gunicorn {args.workers} workers x {args.threads} gthread threads on 127.0.0.1, "
          f"{args.seconds:g} s per round, clients over {args.client_processes} processes; "
          "server, database and clients share this machine's cores.")  # fmt: skip
    print(HEADER, flush=True)
    rows: list[dict[str, Any]] = []
    if args.vs_label_studio:
        rows += run_label_studio(clients, args.seconds, args)
    for backend in [b for b in args.backends.split(",") if b]:
        rows += run_medloop(backend, clients, args.seconds, args, floor=not args.no_floor)
    print()
    print(HEADER)
    for row in rows:
        print(_row_line(row))
    for line in comparisons(rows, clients):
        print(line)
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "queue_load.json").write_text(json.dumps(rows, indent=2))
    if any(r["double_handed"] for r in rows if r["system"] != "label-studio"):
        raise SystemExit("FAIL: a case was handed to two annotators at once.")


if __name__ == "__main__":
    main()
