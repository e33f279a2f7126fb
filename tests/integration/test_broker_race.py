"""The embedded broker must survive many concurrent enqueues against readers (issue 15).

The old default, kombu's file-system transport, loses messages when a reader takes a message
file before its writer filled it (kombu issue 1551): the reader gets JSONDecodeError (Celery's
worker died of it after 26 minutes of `make run`) and the message is gone. The same workload
through the new default, the Valkey server run_platform starts on a Unix socket, delivers every
message once. The workload is bench/broker_choice.py's race with real processes; the file-system
transport polls every 10 ms here (200 ms in the old settings) so the race shows within seconds.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.broker_choice import filesystem_broker, race
from medloop import embedded_broker

pytestmark = pytest.mark.integration

# 8 writers x 150 messages, a pause of up to 5 ms between puts, 4 readers.
WORKLOAD = {"writers": 8, "messages": 150, "readers": 4, "pause": 0.005, "timeout": 120.0}


def test_file_system_broker_loses_messages_to_concurrent_enqueues(tmp_path: Path):
    seen = []
    # A race: a few attempts, each on a fresh folder; it showed in every attempt when measured.
    for attempt in range(4):
        with filesystem_broker(tmp_path / f"attempt-{attempt}") as (url, options):
            options["polling_interval"] = 0.01
            result = race("filesystem", url, options, seed=attempt, **WORKLOAD)
        seen.append(result)
        if result.lost:
            break
    result = seen[-1]
    assert result.lost > 0, [(r.sent, r.received, r.reader_errors) for r in seen]
    assert result.received < result.sent
    assert result.reader_errors.get("JSONDecodeError", 0) > 0


def test_embedded_broker_delivers_every_message_under_the_same_race(tmp_path: Path):
    var_dir = tmp_path / "var"
    binary = embedded_broker.find_server_binary()
    socket_path = embedded_broker.prepare_socket_folder(var_dir)
    server = subprocess.Popen(
        embedded_broker.server_command(binary, var_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert embedded_broker.wait_until_ready(socket_path)
        for seed in range(2):
            result = race(
                "embedded",
                embedded_broker.broker_url(var_dir),
                {"visibility_timeout": 3600},
                seed=seed,
                **WORKLOAD,
            )
            assert result.sent == 8 * 150
            assert result.received == result.sent
            assert (result.lost, result.duplicates) == (0, 0)
            assert result.reader_errors == {} and result.writer_errors == {}
    finally:
        server.terminate()
        server.wait(timeout=20)
    # Only this user may connect: the socket's folder is private, and no TCP port was opened.
    assert socket_path.parent.stat().st_mode & 0o777 == 0o700
