"""Case hand-out under load: closed-loop annotators against a production server (gunicorn)
over loopback, on PostgreSQL and on SQLite.

Each client is a different annotator that asks for the next case, opens its annotation, saves
a draft (findings + one box), submits, and repeats. Prints p50/p95/p99 of the next-case call,
requests/s, errors, and cases handed to two annotators at once (must be 0), and the ratio to
Label Studio CE 1.23.2 measured on this kind of machine (PostgreSQL, 50 clients: p95 5.4 s at
7 requests/s).

    python bench/queue_load.py [--seconds 15] [--clients 1,10,50] [--backends postgres,sqlite]
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

import requests

REPO = Path(__file__).resolve().parents[1]
LABEL_STUDIO_P95_S = 5.4
LABEL_STUDIO_RPS = 7.0
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(database_url: str, var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "medloop.settings.production",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_SSL_REDIRECT": "false",  # plain HTTP over loopback (production sits behind TLS)
        "DATABASE_URL": database_url,
        "MEDLOOP_VAR_DIR": str(var_dir),
        "MEDLOOP_LOG_LEVEL": "WARNING",
    }


def start_gunicorn(
    env: dict[str, str], *, workers: int, threads: int
) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn (gthread) on a free loopback port; returns the process and its base URL once
    /health/ answers. Keep-alive outlasts any client's pause: an idle connection closed by the
    server just as a client reuses it is the client's error, not the server's."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "medloop.wsgi", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "--keep-alive", "75"],
        cwd=REPO, env=env, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if requests.get(base + "/health/", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.2)
    return server, base


def stop_gunicorn(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


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

    call_command("migrate", interactive=False, verbosity=0)
    project = projects.create_project(name="bench", created_by=None, validation_fraction=0.0)
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


class Client(threading.Thread):
    def __init__(self, base: str, project: int, token: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base, self.project, self.stop = base, project, stop
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.next_case_s: list[float] = []
        self.requests = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.cases: list[int] = []

    def _call(self, method: str, path: str, **kwargs: object) -> requests.Response | None:
        self.requests += 1
        try:
            response = self.session.request(method, self.base + path, timeout=60, **kwargs)
        except requests.RequestException as exc:
            self.errors[type(exc).__name__] += 1
            return None
        if response.status_code >= 400:
            self.errors[f"{method} {response.status_code}"] += 1
            return None
        return response

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            nxt = self._call("POST", f"/api/projects/{self.project}/next-case/")
            self.next_case_s.append(time.perf_counter() - started)
            if nxt is None:
                continue
            if nxt.status_code == 204:
                self.errors["queue empty"] += 1
                return
            case = nxt.json()
            self.cases.append(case["id"])
            instance = case["series"][0]["instances"][0]["id"]
            box = {
                "instance_id": instance,
                "x": 10,
                "y": 10,
                "width": 20,
                "height": 20,
                "finding": "nodule",
            }
            self._call(
                "POST",
                f"/api/cases/{case['id']}/annotation/submit/",
                json={
                    "findings": {"nodule": "present"},
                    "boxes": [box],
                    "report": {"impression": "Nodule in the right upper zone."},
                },
                headers={"If-Match": case["annotation"]["etag"]},
            )


def client_process(
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
    threads = [Client(base, project, token, stop) for token in tokens]
    time.sleep(max(0.0, start_at - time.time()))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    results.put(
        {
            "latencies": [v for t in threads for v in t.next_case_s],
            "requests": sum(t.requests for t in threads),
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


def run_backend(
    backend: str,
    clients: list[int],
    seconds: float,
    workers: int,
    worker_class: str,
    threads: int,
    client_processes: int,
) -> list[dict]:
    var_dir = Path(tempfile.mkdtemp(prefix=f"medloop-bench-{backend}-"))
    if backend == "postgres":
        import psycopg

        admin = PG_ADMIN_URL.replace("postgres://", "postgresql://", 1) + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS medloop_bench WITH (FORCE)")
            conn.execute("CREATE DATABASE medloop_bench")
        database_url = f"{PG_ADMIN_URL}/medloop_bench"
    else:
        database_url = f"sqlite:///{var_dir / 'bench.sqlite3'}"
    env = _env(database_url, var_dir)
    needed = int(max(clients) * seconds * 8) + 500
    prepared = subprocess.run(
        [sys.executable, __file__, "--prepare", str(needed), str(sum(clients))],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    setup = json.loads(prepared.stdout.strip().splitlines()[-1])
    server, base = start_gunicorn(env, workers=workers, threads=threads)
    try:
        results = []
        token_pool = iter(setup["tokens"])
        for count in clients:
            tokens = [next(token_pool) for _ in range(count)]
            processes = min(count, client_processes)
            queue: multiprocessing.Queue = multiprocessing.Queue()
            start_at = time.time() + 1.0
            workers_ = [
                multiprocessing.Process(
                    target=client_process,
                    args=(base, setup["project"], tokens[i::processes], start_at, seconds, queue),
                )
                for i in range(processes)
            ]
            for worker in workers_:
                worker.start()
            parts = [queue.get(timeout=seconds + 120) for _ in workers_]
            for worker in workers_:
                worker.join(timeout=30)
            latencies = [v for part in parts for v in part["latencies"]]
            handed = collections.Counter(c for part in parts for c in part["cases"])
            errors: collections.Counter[str] = collections.Counter()
            for part in parts:
                errors.update(part["errors"])
            results.append(
                {
                    "backend": backend,
                    "clients": count,
                    "next_case_p50_ms": 1000 * _percentile(latencies, 50),
                    "next_case_p95_ms": 1000 * _percentile(latencies, 95),
                    "next_case_p99_ms": 1000 * _percentile(latencies, 99),
                    "requests_per_s": sum(part["requests"] for part in parts) / seconds,
                    "next_case_per_s": len(latencies) / seconds,
                    "errors": dict(errors),
                    "double_handed": sum(1 for n in handed.values() if n > 1),
                    "cases_served": len(handed),
                }
            )
            # Later rounds start from a clean slate: each annotator is new.
        return results
    finally:
        stop_gunicorn(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=8, help="threads per gthread worker")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="load-generator processes the clients are spread over",
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
    rows = []
    for backend in args.backends.split(","):
        rows += run_backend(
            backend,
            clients,
            args.seconds,
            args.workers,
            args.worker_class,
            args.threads,
            args.client_processes,
        )
    header = (
        f"{'backend':<9}{'clients':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'req/s':>9}{'next/s':>8}{'errors':>8}{'double':>8}"
        f"{'p95 vs LS':>11}{'req/s vs LS':>13}"
    )
    print(header)
    for r in rows:
        n_errors = sum(v for k, v in r["errors"].items() if k != "queue empty")
        print(
            f"{r['backend']:<9}{r['clients']:>8}{r['next_case_p50_ms']:>9.1f}"
            f"{r['next_case_p95_ms']:>9.1f}{r['next_case_p99_ms']:>9.1f}"
            f"{r['requests_per_s']:>9.1f}{r['next_case_per_s']:>8.1f}{n_errors:>8}"
            f"{r['double_handed']:>8}"
            f"{LABEL_STUDIO_P95_S * 1000 / r['next_case_p95_ms']:>10.1f}x"
            f"{r['requests_per_s'] / LABEL_STUDIO_RPS:>12.1f}x"
        )
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "queue_load.json").write_text(json.dumps(rows, indent=2))
    print(
        "Ratios are against Label Studio CE 1.23.2 with PostgreSQL and 50 clients "
        f"(p95 {LABEL_STUDIO_P95_S} s, {LABEL_STUDIO_RPS} requests/s); goal: 20x on both."
    )
    if any(r["double_handed"] for r in rows):
        raise SystemExit("FAIL: a case was handed to two annotators at once.")


if __name__ == "__main__":
    main()
