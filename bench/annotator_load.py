"""Simulated annotators against a production server: gunicorn on PostgreSQL over loopback.

Each of N annotators repeats what the workspace does for one case: ask for the next case (POST
next-case), fetch its image (GET the DICOM file, as the viewer does; cached by ETag, like the
browser, the second time), save a draft twice (PUT annotation with If-Match), submit (POST
submit), with a pause of ``--think`` seconds (exponentially distributed) between steps, as a
person looks and draws. The annotators arrive one after another over ``--ramp`` seconds (as
locust's spawn rate does); figures are taken over the ``--seconds`` after the ramp-up.
Prints p50/p95/p99 per endpoint, requests/s and errors by kind, once
with the pause and once without it (closed loop, every client hammering: the saturation
point of the machine), and the ratio of the two runs' p95.

    python bench/annotator_load.py [--clients 50] [--seconds 60] [--think 1.0] [--ramp 10]

Goal (issue 8): p95 under 100 ms for the JSON endpoints, zero errors, with 50 annotators.
The load generator runs on the same machine as the server and the database.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from queue_load import PG_ADMIN_URL, _env, _percentile, start_gunicorn, stop_gunicorn  # noqa: E402

ENDPOINTS = ("next-case", "image", "image (cached)", "save draft", "submit")
JSON_ENDPOINTS = ("next-case", "save draft", "submit")
SLOW_S = 0.2  # requests slower than this are listed with their time (where the tail comes from)


class Annotator(threading.Thread):
    def __init__(
        self,
        base: str,
        project: int,
        token: str,
        think: float,
        stop: threading.Event,
        seed: int,
        delay: float = 0.0,
        measure_from: float = 0.0,
    ) -> None:
        super().__init__(daemon=True)
        self.delay, self.measure_from = delay, measure_from
        self.base, self.project, self.think, self.stop = base, project, think, stop
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.rng = random.Random(seed)
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.image_etags: dict[int, str] = {}
        self.slow: list[tuple[float, str, float]] = []

    def _pause(self) -> bool:
        """Think; False when the run ended meanwhile (then send nothing more: a burst of
        requests cut short would measure the stop, not the server)."""
        if self.think > 0:
            self.stop.wait(self.rng.expovariate(1.0 / self.think))
        return not self.stop.is_set()

    def _call(
        self, name: str, method: str, path: str, **kwargs: object
    ) -> requests.Response | None:
        started = time.perf_counter()
        measured = time.time() >= self.measure_from  # steady state, after the ramp-up
        self.requests += measured
        try:
            response = self.session.request(method, self.base + path, timeout=60, **kwargs)  # type: ignore[arg-type]
        except requests.RequestException as exc:
            self.errors[f"{name}: {type(exc).__name__}"] += 1
            return None
        if measured:
            seconds = time.perf_counter() - started
            self.latency[name].append(seconds)
            if seconds > SLOW_S:
                self.slow.append((round(time.time() - self.measure_from, 2), name, seconds))
        if response.status_code >= 400:
            self.errors[f"{name}: HTTP {response.status_code}"] += 1
            return None
        return response

    def run(self) -> None:
        self.stop.wait(self.delay)  # annotators arrive one after another (ramp-up)
        while not self.stop.is_set():
            nxt = self._call("next-case", "POST", f"/api/projects/{self.project}/next-case/")
            if nxt is None:
                continue
            if nxt.status_code == 204:
                self.errors["queue empty"] += 1
                return
            case = nxt.json()
            instance = case["series"][0]["instances"][0]["id"]
            cached = self.image_etags.get(instance)
            if cached is None:
                image = self._call("image", "GET", f"/api/instances/{instance}/file/")
                if image is not None:
                    self.image_etags[instance] = image.headers.get("ETag", "")
            else:
                self._call(
                    "image (cached)",
                    "GET",
                    f"/api/instances/{instance}/file/",
                    headers={"If-None-Match": cached},
                )
            etag = case["annotation"]["etag"]
            box = {"instance_id": instance, "x": 10, "y": 12, "width": 30, "height": 24}
            for step in range(2):
                if not self._pause():
                    return
                saved = self._call(
                    "save draft",
                    "PUT",
                    f"/api/cases/{case['id']}/annotation/",
                    json={
                        "findings": {"nodule": "present"},
                        "boxes": [{**box, "finding": "nodule", "x": 10 + step}],
                    },
                    headers={"If-Match": etag},
                )
                if saved is None:
                    break
                etag = saved.headers["ETag"]
            if not self._pause():
                return
            self._call(
                "submit",
                "POST",
                f"/api/cases/{case['id']}/annotation/submit/",
                json={"report": {"impression": "Nodule in the right upper zone."}},
                headers={"If-Match": etag},
            )


def client_process(
    base: str, project: int, tokens: list[str], think: float, start_at: float, seconds: float,
    ramp: float, slots: list[int], results: multiprocessing.Queue,
) -> None:  # fmt: skip
    """Annotator ``slots[i]`` of all arrives ``ramp * slot / total`` seconds after the start;
    requests are measured from the end of the ramp-up for ``seconds``."""
    stop = threading.Event()
    total = max(slots) + 1 if slots else 1
    threads = [
        Annotator(base, project, token, think, stop, seed=slot, delay=ramp * slot / total,
                  measure_from=start_at + ramp)
        for slot, token in zip(slots, tokens, strict=True)
    ]  # fmt: skip
    time.sleep(max(0.0, start_at - time.time()))
    for thread in threads:
        thread.start()
    time.sleep(ramp + seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=90)
    latency: dict[str, list[float]] = collections.defaultdict(list)
    errors: collections.Counter[str] = collections.Counter()
    for thread in threads:
        for name, values in thread.latency.items():
            latency[name].extend(values)
        errors.update(thread.errors)
    results.put(
        {
            "slow": [entry for thread in threads for entry in thread.slow],
            "latency": dict(latency),
            "errors": dict(errors),
            "requests": sum(t.requests for t in threads),
        }
    )


def run(
    base: str,
    project: int,
    tokens: list[str],
    think: float,
    seconds: float,
    procs: int,
    ramp: float,
) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 1.0
    processes = min(procs, len(tokens))
    slots = list(range(len(tokens)))
    workers = [
        multiprocessing.Process(
            target=client_process,
            args=(
                base,
                project,
                tokens[i::processes],
                think,
                start_at,
                seconds,
                ramp,
                slots[i::processes],
                queue,
            ),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    parts = [queue.get(timeout=ramp + seconds + 180) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    latency: dict[str, list[float]] = collections.defaultdict(list)
    errors: collections.Counter[str] = collections.Counter()
    for part in parts:
        for name, values in part["latency"].items():
            latency[name].extend(values)
        errors.update(part["errors"])
    slow = sorted((entry for part in parts for entry in part["slow"]), key=lambda e: e[0])
    return {
        "slow": slow,
        "think_s": think,
        "requests_per_s": sum(p["requests"] for p in parts) / seconds,
        "errors": dict(errors),
        "endpoints": {
            name: {
                "count": len(values),
                "p50_ms": 1000 * _percentile(values, 50),
                "p95_ms": 1000 * _percentile(values, 95),
                "p99_ms": 1000 * _percentile(values, 99),
            }
            for name, values in sorted(latency.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between steps, s")
    parser.add_argument(
        "--ramp", type=float, default=10.0, help="seconds over which the annotators arrive"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--client-processes", type=int, default=4)
    args = parser.parse_args()

    import psycopg

    admin = PG_ADMIN_URL.replace("postgres://", "postgresql://", 1) + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS medloop_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE medloop_bench")
    var_dir = Path(tempfile.mkdtemp(prefix="medloop-bench-load-"))
    env = _env(f"{PG_ADMIN_URL}/medloop_bench", var_dir)
    # Two runs of 50 annotators: enough cases for the closed loop's pace.
    cases = int(args.clients * args.seconds * 3) + 500
    prepared = subprocess.run(
        [sys.executable, str(REPO / "bench" / "queue_load.py"), "--prepare", str(cases),
         str(2 * args.clients)],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    setup = json.loads(prepared.stdout.strip().splitlines()[-1])
    server, base = start_gunicorn(env, workers=args.workers, threads=args.threads)
    try:
        tokens = setup["tokens"]
        rows = [
            run(base, setup["project"], tokens[: args.clients], args.think, args.seconds,
                args.client_processes, args.ramp),
            run(base, setup["project"], tokens[args.clients :], 0.0, args.seconds,
                args.client_processes, args.ramp),
        ]  # fmt: skip
    finally:
        stop_gunicorn(server)

    for row in rows:
        think = f"think {row['think_s']:.1f} s" if row["think_s"] else "no think time"
        print(f"\n{args.clients} annotators, {think}, {args.seconds:.0f} s:"
              f" {row['requests_per_s']:.1f} requests/s")  # fmt: skip
        print(f"  {'endpoint':<16}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
        for name, e in row["endpoints"].items():
            print(f"  {name:<16}{e['count']:>7}{e['p50_ms']:>9.1f}{e['p95_ms']:>9.1f}"
                  f"{e['p99_ms']:>9.1f}")  # fmt: skip
        if row["slow"]:
            times = ", ".join(f"{t:.0f}s {n} {1000 * v:.0f}ms" for t, n, v in row["slow"][:12])
            print(f"  {len(row['slow'])} requests over {SLOW_S * 1000:.0f} ms, first: {times}")
        errors = {k: v for k, v in row["errors"].items() if k != "queue empty"}
        print(f"  errors: {sum(errors.values())} {errors or ''}")
    paced, closed = rows
    worst = max(
        (paced["endpoints"][n]["p95_ms"] for n in JSON_ENDPOINTS if n in paced["endpoints"]),
        default=float("nan"),
    )
    print(f"\nworst JSON p95 with think time: {worst:.1f} ms (goal < 100 ms)")
    for name in JSON_ENDPOINTS:
        if name in paced["endpoints"] and name in closed["endpoints"]:
            ratio = closed["endpoints"][name]["p95_ms"] / paced["endpoints"][name]["p95_ms"]
            print(f"  {name}: p95 without think time is {ratio:.1f}x the paced p95")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "annotator_load.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
