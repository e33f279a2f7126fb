"""Soak of `make run`: the whole platform as run_platform starts it (embedded broker, gunicorn,
Celery worker, beat, DICOM listener) under simulated annotators and retraining cycles, for
--minutes (30 by default). Reports crashes, restarts and lost tasks (goal: 0 lost).

What runs:
  - `manage.py run_platform` on a fresh var folder (SQLite, embedded Valkey broker), with
    --demo-cases synthetic cases, on free loopback ports;
  - --annotators simulated annotators (each its own account and token): next case, image, a
    draft, submit, with exponential pauses of mean --think seconds (as bench/annotator_load.py);
  - a modality that sends a new synthetic study to the DICOM listener (C-STORE, pynetdicom)
    every --arrival-every seconds, so the queue refills as annotators empty it;
  - a model owner who asks for a retraining cycle every --cycle-every seconds (409 while one is
    active); cycles also start by themselves at the project's label threshold;
  - probe tasks: every --probe-every seconds the bench itself sends a real, idempotent MedLoop
    task (annotations.release_expired_leases) with a known id through the broker;
  - optional chaos: every --chaos-every seconds a SIGKILL to one of worker, beat, listener, web,
    broker in turn (run_platform must restart it; acknowledged-late tasks must come back).

Then the load stops and the bench waits up to --drain seconds for the work in flight. Lost:
  - probe tasks sent but never run to the end (the worker logs every task's id);
  - tasks the worker received but never finished (succeeded, failed or retried);
  - beat's sends that no worker received (by task name, probes aside);
  - retraining cycles still queued or running after the drain.
Crashes: children that exited without the bench killing them. The script exits non-zero on any
loss, crash or a platform that stopped.

    python bench/soak.py [--minutes 30] [--annotators 6] [--think 2] [--demo-cases 60]
        [--arrival-every 4] [--cycle-every 300] [--probe-every 5] [--chaos-every 0] [--seed 1]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from medloop import embedded_broker  # noqa: E402

PROBE_TASK = "annotations.release_expired_leases"
TASK_LINE = re.compile(r"Task ([\w.]+)\[([0-9a-f-]{36})\] (received|succeeded|raised|retry|failed)")
BEAT_LINE = re.compile(r"Sending due task [\w-]+ \(([\w.]+)\)")
CYCLE_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+: [^\]]*\] cycle (\d+):", re.M)
CYCLE_TASKS = (
    "active_learning.train_cycle",
    "active_learning.score_chunk",
    "active_learning.rank_cycle",
)
# A running cycle that logged nothing for longer than beat's watchdog allows
# (MEDLOOP_CYCLE_STALE_SECONDS, then up to a minute until beat looks) is stalled: lost.
WATCHDOG_GRACE_S = 120
CHAOS_ORDER = ("worker", "beat", "listener", "web", "broker")

PREPARE = """
import json
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from annotations.models import Project
from annotations.services import projects
from medloop.platform.demo import DEMO_PROJECT
User = get_user_model()
project = Project.objects.get(name=DEMO_PROJECT)
tokens = []
for i in range({annotators}):
    user, _ = User.objects.get_or_create(username=f"soak-annotator-{{i}}")
    if not project.memberships.filter(user=user, role="annotator").exists():
        projects.add_member(project=project, user=user, role="annotator", added_by=None)
    tokens.append(Token.objects.get_or_create(user=user)[0].key)
owner = User.objects.get(username="modelowner")
print(json.dumps({{"project": project.pk, "tokens": tokens,
                  "owner": Token.objects.get_or_create(user=owner)[0].key}}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Annotator(threading.Thread):
    """One person labelling: next case, image, a draft, submit; pauses between steps."""

    def __init__(self, base: str, project: int, token: str, think: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.base, self.project, self.think = base, project, think
        self.rng = random.Random(seed)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.stop = threading.Event()
        self.requests = 0
        self.submitted = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.latency: list[float] = []

    def _call(self, name: str, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        started = time.perf_counter()
        self.requests += 1
        try:
            response = self.session.request(method, self.base + path, timeout=60, **kwargs)
        except requests.RequestException as exc:
            self.errors[f"{name}: {type(exc).__name__}"] += 1
            return None
        self.latency.append(time.perf_counter() - started)
        if response.status_code >= 400:
            self.errors[f"{name}: HTTP {response.status_code}"] += 1
            return None
        return response

    def _pause(self) -> bool:
        self.stop.wait(self.rng.expovariate(1.0 / self.think) if self.think > 0 else 0)
        return not self.stop.is_set()

    def run(self) -> None:
        while self._pause():
            nxt = self._call("next-case", "POST", f"/api/projects/{self.project}/next-case/")
            if nxt is None:
                continue
            if nxt.status_code == 204:  # everything labelled: wait for the queue to refill
                self.stop.wait(10)
                continue
            case = nxt.json()
            instance = case["series"][0]["instances"][0]["id"]
            self._call("image", "GET", f"/api/instances/{instance}/file/")
            if not self._pause():
                return
            box = {"instance_id": instance, "finding": "nodule", "width": 30, "height": 24}
            saved = self._call(
                "save draft",
                "PUT",
                f"/api/cases/{case['id']}/annotation/",
                json={
                    "findings": {"nodule": self.rng.choice(["present", "absent"])},
                    "boxes": [
                        {**box, "x": self.rng.randint(0, 200), "y": self.rng.randint(0, 200)}
                    ],
                },
                headers={"If-Match": case["annotation"]["etag"]},
            )
            if saved is None or not self._pause():
                continue
            done = self._call(
                "submit",
                "POST",
                f"/api/cases/{case['id']}/annotation/submit/",
                json={"report": {"impression": "Soak test report."}},
                headers={"If-Match": saved.headers["ETag"]},
            )
            self.submitted += done is not None


class Modality(threading.Thread):
    """A modality sending one new synthetic study every ``every`` seconds by C-STORE."""

    def __init__(self, port: int, every: float, seed: int, folder: Path) -> None:
        super().__init__(daemon=True)
        self.port, self.every, self.seed, self.folder = port, every, seed, folder
        self.stop = threading.Event()
        self.stored = 0
        self.errors: collections.Counter[str] = collections.Counter()

    def run(self) -> None:
        import pydicom
        from pynetdicom import AE

        from active_learning.ml import synthetic

        index = 0
        while not self.stop.wait(self.every):
            case = synthetic.generate_case(self.seed, index, 256)
            path = self.folder / synthetic.file_name(case)
            synthetic.write_dicom(case, path)
            index += 1
            dataset = pydicom.dcmread(path)
            ae = AE(ae_title="SOAKMODALITY")
            ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
            try:
                assoc = ae.associate("127.0.0.1", self.port, ae_title="MEDLOOP")
                if not assoc.is_established:
                    self.errors["association refused or listener down"] += 1
                    continue
                try:
                    status = assoc.send_c_store(dataset)
                finally:
                    assoc.release()
                if status and status.Status == 0:
                    self.stored += 1
                else:
                    self.errors[f"C-STORE status {getattr(status, 'Status', None)}"] += 1
            except Exception as exc:  # the listener is restarting (chaos)
                self.errors[type(exc).__name__] += 1
            finally:
                path.unlink(missing_ok=True)


class Platform:
    """`manage.py run_platform` in a fresh var folder, its output in one log."""

    def __init__(self, var_dir: Path, demo_cases: int, env_extra: dict[str, str]) -> None:
        self.var_dir = var_dir
        self.port, self.dicom_port = _free_port(), _free_port()
        self.log_path = var_dir / "run_platform.log"
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if k not in ("DATABASE_URL", "CELERY_BROKER_URL")
            },
            "DJANGO_SETTINGS_MODULE": "medloop.settings.local",
            "MEDLOOP_VAR_DIR": str(var_dir),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
            **env_extra,
        }
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_platform", "--port", str(self.port),
             "--dicom-port", str(self.dicom_port), "--demo-cases", str(demo_cases)],
            cwd=REPO, env=self.env, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_started(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"run_platform exited while starting:\n{self.log()[-3000:]}")
            if "Press Ctrl-C" in self.log() and " ready." in self.log():
                return
            time.sleep(1)
        raise SystemExit("run_platform did not start in time")

    def pid(self, name: str) -> int | None:
        found = re.findall(rf"started {name} \(pid (\d+)\)", self.log())
        return int(found[-1]) if found else None

    def prepare(self, annotators: int) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", PREPARE.format(annotators=annotators)],
            cwd=REPO, env=self.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(result.stdout.strip().splitlines()[-1])

    def stop(self) -> bool:
        """Ctrl-C; True when run_platform said it stopped."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return "MedLoop stopped." in self.log()


def send_probe(broker_url: str, transport_options: dict[str, Any]) -> str | None:
    """Send the probe task with a fresh id straight through the broker; its id, or None when
    the broker refused it (counted apart: not lost, never accepted)."""
    from celery import Celery

    app = Celery("soak-probe", broker=broker_url)
    app.conf.broker_transport_options = transport_options
    task_id = str(uuid.uuid4())
    try:
        app.send_task(PROBE_TASK, task_id=task_id, queue="default", retry=False)
    except Exception:  # the broker is down (chaos killed it): not accepted, so not lost
        return None
    finally:
        app.close()
    return task_id


def count_tasks(log: str) -> tuple[dict[str, str], dict[str, set[str]], collections.Counter[str]]:
    """From the worker's log: each task id's name, the ids in each state, beat's sends."""
    names: dict[str, str] = {}
    states: dict[str, set[str]] = collections.defaultdict(set)
    for name, task_id, state in TASK_LINE.findall(log):
        names[task_id] = name
        states[state].add(task_id)
    beat = collections.Counter(BEAT_LINE.findall(log))
    return names, states, beat


def cycles_alive(
    log: str, cycles: list[dict[str, Any]], stale_seconds: float
) -> tuple[list[int], list[int]]:
    """Split the still active cycles into (running: the worker logged a line for it within
    ``stale_seconds``, lost: queued and never taken, or silent for longer)."""
    last_seen: dict[int, datetime] = {}
    for stamp, cycle_id in CYCLE_LINE.findall(log):
        last_seen[int(cycle_id)] = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
    now = datetime.now()
    running, lost = [], []
    for cycle in cycles:
        if cycle["status"] not in ("queued", "running"):
            continue
        seen = last_seen.get(cycle["id"])
        fresh = seen is not None and (now - seen).total_seconds() < stale_seconds
        (running if cycle["status"] == "running" and fresh else lost).append(cycle["id"])
    return running, lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--annotators", type=int, default=6)
    parser.add_argument("--think", type=float, default=2.0, help="mean pause between steps, s")
    parser.add_argument("--demo-cases", type=int, default=60)
    parser.add_argument(
        "--arrival-every", type=float, default=4.0, help="s between studies sent (0: none)"
    )
    parser.add_argument("--cycle-every", type=float, default=300.0)
    parser.add_argument("--probe-every", type=float, default=5.0)
    parser.add_argument("--chaos-every", type=float, default=0.0, help="0: no chaos")
    parser.add_argument("--drain", type=float, default=300.0, help="max s to wait at the end")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    var_dir = Path(tempfile.mkdtemp(prefix="medloop-soak-"))
    env_extra: dict[str, str] = {}
    if args.chaos_every:
        # A killed worker's unacknowledged tasks come back after the visibility timeout: short
        # enough here that they come back within the drain (training claims stop duplicates).
        # A cycle whose training worker was killed after such a redelivery is resumed by beat's
        # watchdog once its heartbeat is MEDLOOP_CYCLE_STALE_SECONDS old: shortened too.
        env_extra = {
            "CELERY_VISIBILITY_TIMEOUT": "60",
            "CELERY_UNACKED_RESTORE_INTERVAL": "5",
            "CELERY_UNACKED_RESTORE_THROTTLE": "2",
            "MEDLOOP_CYCLE_STALE_SECONDS": "90",
        }
    started = time.monotonic()
    platform = Platform(var_dir, args.demo_cases, env_extra)
    print(f"soak: var {var_dir}, web {platform.base}, {args.minutes:g} min", flush=True)
    annotators: list[Annotator] = []
    modality: Modality | None = None
    probes: list[str] = []
    refused_probes = 0
    injected: collections.Counter[str] = collections.Counter()
    cycles_requested = cycles_conflict = 0
    cycle_errors: collections.Counter[str] = collections.Counter()
    died_at: float | None = None
    try:
        platform.wait_started()
        setup = platform.prepare(args.annotators)
        print(f"started in {time.monotonic() - started:.0f} s", flush=True)
        broker_url = embedded_broker.broker_url(var_dir)
        options = {"visibility_timeout": int(env_extra.get("CELERY_VISIBILITY_TIMEOUT", 3600))}
        annotators = [
            Annotator(platform.base, setup["project"], token, args.think, seed=args.seed * 100 + i)
            for i, token in enumerate(setup["tokens"])
        ]
        for annotator in annotators:
            annotator.start()
        if args.arrival_every:
            modality = Modality(
                platform.dicom_port, args.arrival_every, args.seed + 1000, var_dir / "modality"
            )
            (var_dir / "modality").mkdir()
            modality.start()
        owner = requests.Session()
        owner.headers["Authorization"] = f"Token {setup['owner']}"
        load_started = time.monotonic()
        end = load_started + 60 * args.minutes
        next_probe = load_started + 30
        # The first request after the first labels: a cycle with none fails at once.
        next_cycle = load_started + args.cycle_every
        next_chaos = load_started + (args.chaos_every or float("inf"))
        next_report = load_started + 60
        chaos_turn = 0
        while time.monotonic() < end:
            now = time.monotonic()
            if platform.process.poll() is not None:
                died_at = now - load_started
                print(f"run_platform exited after {died_at:.0f} s", flush=True)
                break
            if now >= next_probe:
                task_id = send_probe(broker_url, options)
                if task_id is None:
                    refused_probes += 1
                else:
                    probes.append(task_id)
                next_probe = now + args.probe_every
            if now >= next_cycle:
                try:
                    answer = owner.post(
                        f"{platform.base}/api/projects/{setup['project']}/cycles/", timeout=60
                    )
                    if answer.status_code == 202:
                        cycles_requested += 1
                    elif answer.status_code == 409:
                        cycles_conflict += 1
                    else:
                        cycle_errors[f"HTTP {answer.status_code}"] += 1
                except requests.RequestException as exc:
                    cycle_errors[type(exc).__name__] += 1
                next_cycle = now + args.cycle_every
            if now >= next_chaos:
                name = CHAOS_ORDER[chaos_turn % len(CHAOS_ORDER)]
                chaos_turn += 1
                pid = platform.pid(name)
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        injected[name] += 1
                        print(f"chaos: killed {name} (pid {pid})", flush=True)
                    except ProcessLookupError:
                        pass
                next_chaos = now + args.chaos_every * rng.uniform(0.5, 1.5)
            if now >= next_report:
                done = sum(a.submitted for a in annotators)
                print(
                    f"{(now - load_started) / 60:5.1f} min: {done} submitted, "
                    f"{len(probes)} probes, {cycles_requested} cycles asked",
                    flush=True,
                )
                next_report = now + 60
            time.sleep(0.5)
        for annotator in annotators:
            annotator.stop.set()
        if modality is not None:
            modality.stop.set()
            modality.join(timeout=90)
        for annotator in annotators:
            annotator.join(timeout=90)
        load_seconds = time.monotonic() - load_started

        # Drain: the probes run, cycles end, every received task finishes.
        drain_end = time.monotonic() + args.drain
        pending_cycles: list[dict[str, Any]] = []
        while time.monotonic() < drain_end and platform.process.poll() is None:
            names, states, _ = count_tasks(platform.log())
            finished = states["succeeded"] | states["failed"] | states["raised"]
            unfinished = (states["received"] - finished) | (set(probes) - finished)
            try:
                cycles = owner.get(
                    f"{platform.base}/api/projects/{setup['project']}/cycles/", timeout=60
                ).json()
                pending_cycles = [c for c in cycles if c["status"] in ("queued", "running")]
            except (requests.RequestException, ValueError):
                pending_cycles = [{"status": "unknown"}]
            if not unfinished and not pending_cycles:
                break
            time.sleep(5)
        try:
            cycles = owner.get(
                f"{platform.base}/api/projects/{setup['project']}/cycles/", timeout=60
            ).json()
        except (requests.RequestException, ValueError):
            cycles = []
    finally:
        for annotator in annotators:
            annotator.stop.set()
        if modality is not None:
            modality.stop.set()
        stopped_cleanly = platform.stop()

    log = platform.log()
    names, states, beat_sent = count_tasks(log)
    finished = states["succeeded"] | states["failed"] | states["raised"]
    lost_probes = [p for p in probes if p not in finished]
    stale = float(env_extra.get("MEDLOOP_CYCLE_STALE_SECONDS", 600)) + WATCHDOG_GRACE_S
    running_cycles, lost_cycles = cycles_alive(log, cycles, stale)
    unfinished = sorted(states["received"] - finished)
    # A cycle still training when the soak ends holds its task (not lost: unacknowledged, it is
    # kept by the broker and delivered again after the restart).
    in_progress = [t for t in unfinished if running_cycles and names[t] in CYCLE_TASKS]
    lost_received = [t for t in unfinished if t not in in_progress]
    probe_set = set(probes)
    received_by_name = collections.Counter(
        names[t] for t in states["received"] if t not in probe_set
    )
    beat_lost = {
        name: sent - received_by_name.get(name, 0)
        for name, sent in beat_sent.items()
        if sent > received_by_name.get(name, 0)
    }
    crashes = collections.Counter(re.findall(r"(\w+) exited unexpectedly", log))
    restarts = collections.Counter(re.findall(r"restarting (\w+) \(restart", log))
    unexpected = {n: c - injected.get(n, 0) for n, c in crashes.items() if c > injected.get(n, 0)}
    statuses = collections.Counter(c["status"] for c in cycles)
    errors: collections.Counter[str] = collections.Counter()
    latency: list[float] = []
    for annotator in annotators:
        errors.update(annotator.errors)
        latency.extend(annotator.latency)
    lost = len(lost_probes) + len(lost_received) + sum(beat_lost.values()) + len(lost_cycles)
    print()
    print(f"soak: {load_seconds / 60:.1f} min of load, seed {args.seed}, var {var_dir}")
    print(
        f"annotators: {len(annotators)}, requests {sum(a.requests for a in annotators)}, "
        f"submitted {sum(a.submitted for a in annotators)}, errors {dict(errors) or 0}"
    )
    if latency:
        latency.sort()
        print(
            f"  latency p50 {1000 * statistics.median(latency):.0f} ms, "
            f"p95 {1000 * latency[int(0.95 * (len(latency) - 1))]:.0f} ms"
        )
    if modality is not None:
        print(f"modality: {modality.stored} studies stored, errors {dict(modality.errors) or 0}")
    print(
        f"cycles: asked {cycles_requested} (409 while active: {cycles_conflict}, errors "
        f"{dict(cycle_errors) or 0}), all cycles by status {dict(statuses)}"
    )
    failed_tasks = collections.Counter(names[t] for t in states["failed"] | states["raised"])
    print(
        f"tasks: worker received {len(states['received'])} distinct, finished {len(finished)} "
        f"(of which failed: {dict(failed_tasks) or 0}); beat sent {dict(beat_sent)}"
    )
    print(f"probes: sent {len(probes)}, refused by a down broker {refused_probes}")
    # The web server logs a task it could not hand to a down broker (chaos killed it) and goes
    # on; the rows say what was asked, and beat or the next submission asks again.
    not_queued = collections.Counter(re.findall(r"could not queue ([\w.]+)", log))
    print(
        f"tasks the web server could not queue while the broker was down: {dict(not_queued) or 0}"
    )
    print(
        f"LOST: {lost} (probes {len(lost_probes)}, received but unfinished {len(lost_received)}, "
        f"beat sends never received {beat_lost or 0}, cycles queued or stalled {lost_cycles or 0})"
    )
    print(
        f"still running at the end (not lost): cycles {running_cycles or 0}, "
        f"their tasks {len(in_progress)}"
    )
    print(f"injected kills: {dict(injected) or 0}")
    print(f"crashes (unexpected exits not injected): {unexpected or 0}; all exits {dict(crashes)}")
    print(f"restarts: {dict(restarts) or 0}")
    decode_errors = log.count("JSONDecodeError")
    print(f"JSONDecodeError in the log: {decode_errors}; platform died: {died_at is not None}")
    print(f"stopped cleanly on Ctrl-C: {stopped_cleanly}")
    summary = {
        "args": vars(args),
        "load_seconds": load_seconds,
        "submitted": sum(a.submitted for a in annotators),
        "errors": dict(errors),
        "studies_stored": modality.stored if modality else 0,
        "modality_errors": dict(modality.errors) if modality else {},
        "cycles": dict(statuses),
        "lost": lost,
        "lost_probes": lost_probes,
        "lost_received": lost_received,
        "lost_cycles": lost_cycles,
        "running_cycles": running_cycles,
        "beat_lost": beat_lost,
        "crashes": unexpected,
        "restarts": dict(restarts),
        "injected": dict(injected),
        "decode_errors": decode_errors,
        "not_queued": dict(not_queued),
        "died_at": died_at,
    }
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(summary, indent=2))
    bad = lost or unexpected or died_at is not None or decode_errors or not stopped_cleanly
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
