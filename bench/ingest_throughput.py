"""Ingest throughput: instances/s and MB/s of MedLoop's ingest (parse, check pixels, quarantine
rule, de-identification, atomic write, database rows) against a baseline in the same run that
only reads and writes the same files with pydicom; and, with --cstore, C-STORE of the same
files (dcmtk's storescu) into MedLoop's listener and into Orthanc, side by side. With --ct
SLICES the files are one synthetic chest CT series of SLICES single-frame slices
(active_learning.ml.synthetic_ct, --size pixels square) instead of radiographs (issue 21).

    python bench/ingest_throughput.py [--count 100] [--size 1024] [--cstore]
    python bench/ingest_throughput.py --ct 300 --size 512

Goal (issue 3): MedLoop at least half the pydicom baseline.
"""

from __future__ import annotations

import argparse
import atexit
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _setup_django(var_dir: Path, database_url: str | None) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "medloop.settings.local"
    os.environ["MEDLOOP_VAR_DIR"] = str(var_dir)
    os.environ["MEDLOOP_LOG_LEVEL"] = "WARNING"
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{var_dir / 'bench.sqlite3'}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def baseline(files: list[Path], out_dir: Path) -> float:
    """Read and write each file with pydicom (atomic write, fsync): seconds taken."""
    import pydicom

    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for path in files:
        dataset = pydicom.dcmread(io.BytesIO(path.read_bytes()))
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        target = out_dir / path.name
        tmp = target.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    return time.perf_counter() - started


def medloop(files: list[Path], project_name: str) -> float:
    from loop_support import record_bench_approval

    from annotations.services import ingest, projects

    project = projects.create_project(name=project_name, created_by=None)
    record_bench_approval(project)  # production's default: ingest refuses without one
    started = time.perf_counter()
    for path in files:
        ingest.ingest_dicom_bytes(project=project, data=path.read_bytes(), source_name=path.name)
    return time.perf_counter() - started


def cstore_seconds(files: list[Path], host: str, port: int, aet: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["/usr/bin/storescu", "-aec", aet, host, str(port), *map(str, files)],  # dcmtk's
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024, help="synthetic image size, pixels")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--cstore", action="store_true", help="also C-STORE vs Orthanc")
    parser.add_argument(
        "--ct", type=int, metavar="SLICES", help="one CT series of SLICES slices instead"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="medloop-ingest-bench-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # inputs, outputs, the database
    _setup_django(work / "var", args.database_url)
    if args.ct:
        from active_learning.ml import synthetic_ct

        series = synthetic_ct.generate_series(5, args.ct, args.size)
        synthetic_ct.write_series(synthetic_ct.slice_datasets(series), work / "in")
        kind = f"CT slices of one series, {args.size}x{args.size}"
    else:
        from active_learning.ml import synthetic

        synthetic.generate_dataset(seed=5, count=args.count, out_dir=work / "in", size=args.size)
        kind = f"{args.size}x{args.size} DX"
    files = sorted((work / "in").glob("*.dcm"))
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    warm = sorted((work / "in").glob("*.dcm"))[:3]
    for path in files:  # warm the page cache for both contenders
        path.read_bytes()
    # A short warm-up of each contender (imports, first database writes) that is not timed.
    baseline(warm, work / "warm")
    medloop(warm, "bench-warm-up")
    # Interleaved rounds, medians: disk flush times on a shared machine vary a lot.
    base_runs, our_runs = [], []
    for i in range(args.rounds):
        base_runs.append(baseline(files, work / f"baseline-{i}"))
        our_runs.append(medloop(files, f"bench-ingest-{i}"))
    base, ours = statistics.median(base_runs), statistics.median(our_runs)
    rows = [("pydicom read+write", base), ("MedLoop ingest", ours)]
    if args.cstore:
        rows += cstore_rows(files, work)
    print(f"{len(files)} files, {megabytes:.1f} MB ({kind}), seed 5, {args.rounds} rounds")
    print(f"{'path':<28}{'seconds':>9}{'inst/s':>9}{'MB/s':>8}{'vs baseline':>13}")
    for name, seconds in rows:
        print(
            f"{name:<28}{seconds:>9.2f}{len(files) / seconds:>9.1f}"
            f"{megabytes / seconds:>8.1f}{base / seconds:>12.2f}x"
        )
    spread = ", ".join(
        f"{name} {min(runs):.2f}-{max(runs):.2f} s"
        for name, runs in (("pydicom", base_runs), ("MedLoop", our_runs))
    )
    print(f"spread over the rounds: {spread}")
    print("Goal: MedLoop ingest at least 0.5x the pydicom baseline.")


def cstore_rows(files: list[Path], work: Path) -> list[tuple[str, float]]:
    from loop_support import record_bench_approval

    from annotations.dicom import scp
    from annotations.services import projects
    from tests.support.orthanc import orthanc_on_loopback

    project = projects.create_project(name="bench-cstore", created_by=None)
    record_bench_approval(project)
    project.dicom_ae_title = "MEDLOOP"
    project.save(update_fields=["dicom_ae_title"])
    port = _free_port()
    server = scp.start_listener(scp.ListenerConfig(ae_title="MEDLOOP", host="127.0.0.1", port=port))
    try:
        ours = cstore_seconds(files, "127.0.0.1", port, "MEDLOOP")
    finally:
        server.shutdown()
    with orthanc_on_loopback(work / "orthanc") as peer:
        theirs = cstore_seconds(files, peer.dicom_host, peer.dicom_port, peer.aet)
    return [("C-STORE into MedLoop", ours), ("C-STORE into Orthanc 1.10", theirs)]


if __name__ == "__main__":
    main()
