"""`policybot serve --processes 2`: two servers on one port, sharing the database.

The real command in a process of its own on loopback, Slack configured against the fake Web
API, on a SQLite file: signed events sent over fresh connections (the kernel spreads
connections over the two sockets) are each answered once and logged once, the received
questions were taken by two processes (their marks in the database), and SIGTERM to the
supervisor ends both servers.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.slack_api import FakeSlackApi, fake_slack_api
from tests.reliability import record
from tests.served import ROOT, free_port, signed_mention, slack_serve_env, wait_until_healthy

SECRET = "serve-processes-signing-secret"
EVENTS = 40


def signed_event(number: int) -> tuple[bytes, dict[str, str]]:
    return signed_mention(
        SECRET,
        f"may I post photos of the office? ({number})",
        event_id=f"EvProcesses{number}",
        channel="CPROCESSES",
        user=f"U{number:07d}",
        ts=f"1700000000.{number:06d}",
    )


def children_of(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    async with fake_slack_api() as fake:
        yield fake


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux's /proc")
async def test_two_processes_share_the_port_and_the_database_and_answer_each_event_once(
    slack_api: FakeSlackApi, tmp_path: Path
) -> None:
    port = free_port()
    database = tmp_path / "serve.db"
    env = slack_serve_env(SECRET, slack_api.url, database)
    command = [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--processes", "2"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        supervisor = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)
    try:
        await wait_until_healthy(supervisor, port, log)
        servers = children_of(supervisor.pid)
        assert len(servers) == 2
        for number in range(EVENTS):
            body, headers = signed_event(number)
            # A client of its own each time: a new connection, which the kernel may give to
            # either process's socket.
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for _ in range(100):  # the second process may still be starting
                    assert supervisor.poll() is None, log.read_text(errors="replace")
                    try:
                        acknowledged = await http.post(
                            "/slack/events", content=body, headers=headers
                        )
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
                assert acknowledged.status_code == 200
        replies = await slack_api.wait_for("chat.postMessage", EVENTS)
        await asyncio.sleep(0.5)  # a second answer to any event would arrive by now
        replies = slack_api.calls["chat.postMessage"]
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(30)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
    answered = [r["thread_ts"] for r in replies]
    with sqlite3.connect(database) as db:
        logged = db.execute("SELECT COUNT(*) FROM questions").fetchone()[0]
        takers = [
            row[0]
            for row in db.execute("SELECT DISTINCT taken_by FROM received_questions").fetchall()
        ]
    left = [pid for pid in servers if Path(f"/proc/{pid}").exists()]
    record(
        "Serve: two processes on one port",
        "pytest tests/test_serve_processes.py",
        events=EVENTS,
        answered=len(set(answered)),
        answered_twice=len(answered) - len(set(answered)),
        logged=logged,
        processes_that_took_questions=len(takers),
        servers_left_after_sigterm=len(left),
    )
    assert sorted(set(answered)) == sorted(f"1700000000.{n:06d}" for n in range(EVENTS))
    assert len(answered) == EVENTS  # each once
    assert logged == EVENTS
    assert len(takers) == 2, takers  # both processes answered some
    assert code == 0 and not left
