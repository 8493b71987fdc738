"""Slack events through `policybot serve`, end to end, on loopback.

A real `policybot serve` process (lexical retriever, extractive answers, its own temporary
database with the bundled policy) is sent correctly signed `app_mention` and DM `message`
events, each with its own event id, by concurrent HTTP clients at a fixed offered rate. A fake
Slack Web API in this process records every `chat.postMessage` / `chat.update` the server
makes, so each event's answer is matched to the event and timed:

- ack latency: the event's scheduled send time to the HTTP response (Slack retries an event
  not acknowledged within 3 seconds);
- end-to-end latency: the scheduled send time to the fake API receiving the final answer;
- dropped (no answer), duplicated (more than one), and questions logged in the database.

Latencies count from the scheduled send time, not the moment a client got round to it, so a
server that falls behind is charged for the queue it causes.

    python -m bench slack                      # ours and the echo peer, 50-300 events/s
    python -m bench slack --rates 200 --seconds 10
    python -m bench slack --contention         # 200 events/s beside an upload, a held lock

The contention scenario (`contention`) offers one rate while the server processes a policy
upload of about 10 MB (the admin HTTP API), and again while another process holds the
database's write lock for 2.5 s: what an acknowledgement costs when the database is busy.
Run from another checkout (`git worktree add`), the server is that checkout's code, so the
same scenario measures the code before a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.sections import write_between
from bench.slack_web_api import BOT_USER, on_loopback, read_call
from bench.slack_web_api import answer as slack_answer
from bench.speed import percentile, policybot_command, stop_process
from bot.evaluation import load_questions

ROOT = Path(__file__).resolve().parent.parent
RATES = (50, 100, 200, 300)
TARGET_RATE = 200
#: Slack's limit for acknowledging an event before it retries it.
SLACK_ACK_LIMIT = 3.0
#: Issue 17's figure for an acknowledgement while the database is busy: p99 under 100 ms.
ACK_TARGET = 0.1
SECRET = "bench-signing-secret"
#: The admin HTTP API's bearer token, for the contention scenario's upload.
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
TOKEN = "xoxb-bench"
TEAM = "TBENCH"
#: The placeholder a slow answer shows first (bot.messages.THINKING); the answer
#: replaces it, and only the answer counts.
THINKING_PREFIX = "Thinking…"
#: Seconds to wait, after a step's last event, for its answers (and at the end for all).
DRAIN = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sign(body: bytes, timestamp: str) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()


# -- the fake Slack Web API ----------------------------------------------------------------------
@dataclass
class Recorder:
    """The Slack Web API on loopback: answers like Slack, and notes when each event's answer
    arrived. An event is known by its thread (a mention's ts) or its DM channel."""

    port: int = 0
    answers: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    placeholders: int = 0
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _ts: Any = field(default_factory=lambda: (f"1800000000.{n:06d}" for n in itertools.count(1)))
    _placeholder_of: dict[str, str] = field(default_factory=dict)  # posted ts -> event key
    _expected: set[str] = field(default_factory=set)
    _all_in: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def expect(self, keys: set[str]) -> None:
        self._expected = set(keys)
        self._all_in.clear()
        self._check()

    def _check(self) -> None:
        if self._expected and self._expected.issubset(self.answers):
            self._all_in.set()

    async def all_answered(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_in.wait(), timeout)

    async def api(self, request: web.Request) -> web.Response:
        now = time.perf_counter()
        method = request.match_info["method"]
        self.calls[method] += 1
        payload = await read_call(request)
        answer = slack_answer(method, payload, self._ts, TEAM)
        if method in {"chat.postMessage", "chat.update"}:
            self._note(method, payload, answer["ts"], now)
        return web.json_response(answer)

    def _note(self, method: str, payload: dict[str, Any], ts: str, now: float) -> None:
        """A message the server posted or edited: the placeholder, or the event's answer."""
        channel = str(payload.get("channel", ""))
        # A DM's answer is keyed by its channel (one asker each), whether or not it is posted
        # in a thread (DM answers are threaded since the agent surface); a mention's by its thread.
        key = channel if channel.startswith("D") else str(payload.get("thread_ts") or channel)
        if method == "chat.update":
            key = self._placeholder_of.get(ts, key)
        if str(payload.get("text", "")).startswith(THINKING_PREFIX):
            self.placeholders += 1
            self._placeholder_of[ts] = key
        else:
            self.answers[key].append(now)
            self._check()


@contextlib.asynccontextmanager
async def recorder(fake: Recorder | None = None) -> AsyncIterator[Recorder]:
    """The fake Slack Web API on loopback (`fake`, a Recorder of one's own, or a new one)."""
    fake = fake or Recorder()
    app = web.Application()
    app.router.add_post("/api/{method}", fake.api)
    async with on_loopback(app) as fake.port:
        yield fake


# -- the server under test -----------------------------------------------------------------------
@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    db: Path | None
    #: The PostgreSQL database the server runs on (DATABASE_URL); "" for its SQLite file.
    database_url: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory_kib(self) -> tuple[int, int]:
        """(resident now, peak resident) of the server process, from /proc."""
        fields: dict[str, int] = {}
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name in {"VmRSS", "VmHWM"}:
                fields[name] = int(value.split()[0])
        return fields["VmRSS"], fields["VmHWM"]

    def logged(self) -> int:
        """Questions in the server's log (its own database), read beside the running server."""
        if self.database_url:
            import psycopg

            with psycopg.connect(self.database_url, autocommit=True) as conn:
                row = conn.execute("SELECT count(*) FROM questions").fetchone()
                return int(row[0]) if row else 0
        if self.db is None:
            return 0
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT count(*) FROM questions").fetchone()[0])


def server_env(api_url: str, db: Path | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "POLICYBOT_", "SLACK_", "Microsoft"))
    }
    env.update(
        {
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_API_URL": api_url,
            "POLICYBOT_RETRIEVER": "lexical",
            "POLICYBOT_DELIVERY_INTERVAL": "0",
        }
    )
    if db is not None:
        env["POLICYBOT_DB"] = str(db)
    # The server is this checkout's code, whichever checkout the package was installed from.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["POLICYBOT_ADMIN_TOKEN"] = ADMIN_TOKEN
    return env


async def start(
    name: str,
    api_url: str,
    folder: Path,
    log: Path,
    *,
    database_url: str = "",
    extra_env: dict[str, str] | None = None,
) -> Server:
    """`name` ("echo", or a policybot server) started and answering /healthz: on its own
    SQLite file in `folder`, or on PostgreSQL at `database_url` (several servers may share
    it); `extra_env` adds to or overrides the server's settings."""
    port = free_port()
    db: Path | None = None
    env = server_env(api_url, None)
    if name == "echo":
        command = [sys.executable, "-m", "bench.echo_app", "--port", str(port)]
    else:
        if database_url:
            # Where this server keeps what the database refuses (each replica its own).
            env.update(DATABASE_URL=database_url, POLICYBOT_DB=str(folder / f"{name}.db"))
        else:
            db = folder / "serve.db"
            env = server_env(api_url, db)
        env.update(extra_env or {})
        subprocess.run(  # the bundled policy, loaded before the clock starts
            [*policybot_command(), "policy", "list"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        command = [*policybot_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    server = Server(name, process, port, db, database_url)
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(server.url + "/healthz") as response:
                    if response.status == 200:
                        return server
            await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{name} did not start within 30 s")


def stop(server: Server) -> None:
    stop_process(server.process)


# -- load ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    rate: int
    seconds: float
    sent: int
    acked: int
    ack_p50: float
    ack_p99: float
    late_acks: int  # acknowledged after Slack's 3 s (Slack would retry these)
    answered: int
    unanswered: int  # no answer within the drain time (late, or dropped: see LoadRun)
    duplicated: int
    e2e_p50: float
    e2e_p99: float
    throughput: float
    logged: int | None


@dataclass
class LoadRun:
    name: str
    steps: list[Step]
    rss_idle_mib: float
    rss_peak_mib: float
    placeholders: int
    api_calls: dict[str, int]
    #: Over the whole run, once the server had drained: events never answered, and events
    #: answered more than once.
    dropped: int
    duplicated: int
    logged: int | None


@dataclass
class _Sent:
    key: str
    scheduled: float
    acked_at: float | None = None
    status: int = 0


def event_body(number: int, question: str, run: str) -> tuple[str, bytes]:
    """(the key its answer is recorded under, the signed request's body). Even numbers are
    mentions in a channel (answered in the thread), odd ones DMs (one asker each)."""
    ts = f"1700000000.{number:06d}"
    if number % 2 == 0:
        key = ts
        event = {
            "type": "app_mention",
            "channel": f"C{run}",
            "user": f"U{number:07d}",
            "text": f"<@{BOT_USER}> {question}",
            "ts": ts,
        }
    else:
        key = f"D{run}{number:07d}"
        event = {
            "type": "message",
            "channel_type": "im",
            "channel": key,
            "user": f"U{number:07d}",
            "text": question,
            "ts": ts,
        }
    body = {
        "token": "unused",
        "team_id": TEAM,
        "api_app_id": "ABENCH",
        "type": "event_callback",
        "event_id": f"Ev{run}{number:07d}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        "event": event,
    }
    return key, json.dumps(body).encode()


async def offer(
    server: Server,
    fake: Recorder,
    questions: Sequence[str],
    rate: int,
    seconds: float,
    clients: int,
    run: str,
    first: int,
    drain: float,
) -> Step:
    """Send `rate` events per second for `seconds` from `clients` connections, then wait (at
    most `drain` seconds) for the answers."""
    count = int(rate * seconds)
    bodies = [event_body(first + i, questions[i % len(questions)], run) for i in range(count)]
    fake.expect({key for key, _ in bodies})
    logged_before = server.logged()
    sent: list[_Sent] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def send(record: _Sent, body: bytes) -> None:
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": sign(body, timestamp),
            }
            try:
                async with http.post(
                    server.url + "/slack/events", data=body, headers=headers
                ) as response:
                    await response.read()
                    record.status = response.status
            except aiohttp.ClientError:
                record.status = -1
            record.acked_at = time.perf_counter()

        start = time.perf_counter()
        tasks = []
        for i, (key, body) in enumerate(bodies):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            record = _Sent(key, scheduled)
            sent.append(record)
            tasks.append(asyncio.create_task(send(record, body)))
        await asyncio.gather(*tasks)
        await fake.all_answered(drain)
        await asyncio.sleep(0.5)  # a duplicate would follow its original closely
    ok = [s for s in sent if s.status == 200 and s.acked_at is not None]
    acks = [s.acked_at - s.scheduled for s in ok if s.acked_at is not None]
    answered = [s for s in sent if fake.answers.get(s.key)]
    e2e = [fake.answers[s.key][-1] - s.scheduled for s in answered]
    last = max((fake.answers[s.key][-1] for s in answered), default=start)
    return Step(
        rate=rate,
        seconds=seconds,
        sent=count,
        acked=len(ok),
        ack_p50=percentile(acks, 0.5) if acks else 0.0,
        ack_p99=percentile(acks, 0.99) if acks else 0.0,
        late_acks=sum(a > SLACK_ACK_LIMIT for a in acks),
        answered=len(answered),
        unanswered=count - len(answered),
        duplicated=sum(len(fake.answers[s.key]) > 1 for s in answered),
        e2e_p50=percentile(e2e, 0.5) if e2e else 0.0,
        e2e_p99=percentile(e2e, 0.99) if e2e else 0.0,
        throughput=len(answered) / (last - start) if answered and last > start else 0.0,
        logged=server.logged() - logged_before if server.db or server.database_url else None,
    )


def bench_questions() -> list[str]:
    return [q.question for q in load_questions(ROOT / "eval" / "bundled-policy.jsonl")]


async def load(
    name: str,
    rates: Sequence[int] = RATES,
    seconds: float = 10.0,
    clients: int = 32,
    drain: float = DRAIN,
) -> LoadRun:
    """Start `name` ("policybot" or "echo"), offer each rate in turn, stop it."""
    questions = bench_questions()
    with tempfile.TemporaryDirectory(prefix="policybot-slack-") as folder:
        async with recorder() as fake:
            server = await start(name, fake.url, Path(folder), Path(folder) / f"{name}.log")
            try:
                # One event first, so imports and the first auth.test are not in the figures.
                await offer(server, fake, questions, 1, 1, 1, "W", 0, drain)
                idle, _ = server.memory_kib()
                logged_before = server.logged()
                steps = []
                first = 1
                sent: list[tuple[int, int]] = []  # (step, event number)
                for run, rate in enumerate(rates):
                    sent += [(run, n) for n in range(first, first + int(rate * seconds))]
                    steps.append(
                        await offer(
                            server, fake, questions, rate, seconds, clients, f"R{run}", first, drain
                        )
                    )
                    first += int(rate * seconds)
                everything = {event_body(n, "", f"R{run}")[0] for run, n in sent}
                fake.expect(everything)
                await fake.all_answered(drain)
                _, peak = server.memory_kib()
                logged = server.logged() - logged_before if server.db else None
            finally:
                stop(server)
            dropped = sum(not fake.answers.get(key) for key in everything)
            doubled = sum(len(fake.answers.get(key, ())) > 1 for key in everything)
            return LoadRun(
                name,
                steps,
                idle / 1024,
                peak / 1024,
                fake.placeholders,
                dict(fake.calls),
                dropped,
                doubled,
                logged,
            )


# -- report --------------------------------------------------------------------------------------
def markdown(ours: LoadRun, peer: LoadRun | None, seconds: float, clients: int) -> str:
    rates = ",".join(str(s.rate) for s in ours.steps)
    command = f"python -m bench slack --rates {rates} --seconds {seconds:g} --clients {clients}"
    lines = [
        f"Signed Slack events (half `app_mention`, half DM `message`, each its own event id, "
        f"the {len(bench_questions())} bundled-policy questions in turn) from {clients} "
        f"concurrent connections at a fixed offered rate, {seconds:g} s per step, to a "
        "`policybot serve` process (lexical retriever, extractive answers, its own database "
        "with the bundled policy); the answers go to a fake Slack Web API on 127.0.0.1 that "
        "times each event's threaded reply. Latencies count from each event's scheduled send "
        "time. Reproduce: `" + command + "`.",
        "",
        "| server | offered events/s | sent | acked | ack p50 | ack p99 | acks > 3 s "
        "| answered | not yet | duplicated | logged | end-to-end p50 | p99 | achieved events/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    runs = [ours] + ([peer] if peer else [])
    for run in runs:
        for s in run.steps:
            lines.append(
                f"| {run.name} | {s.rate} | {s.sent} | {s.acked} | {s.ack_p50 * 1000:.1f} ms "
                f"| {s.ack_p99 * 1000:.1f} ms | {s.late_acks} | {s.answered} | {s.unanswered} "
                f"| {s.duplicated} | {'—' if s.logged is None else s.logged} "
                f"| {s.e2e_p50 * 1000:.1f} ms | {s.e2e_p99 * 1000:.1f} ms "
                f"| {s.throughput:.0f} |"
            )
    lines += [
        "",
        "`answered`, `not yet` and `logged` count what arrived within "
        f"{DRAIN:g} s of a step's last event; `achieved` is answers per second from the step's "
        "first event to its last answer. Over the whole run, once each server had drained:",
        "",
    ]
    for run in runs:
        total = sum(s.sent for s in run.steps)
        logged = "" if run.logged is None else f", {run.logged:,} questions logged"
        lines.append(
            f"- {run.name}: {total:,} events sent, {run.dropped} never answered (dropped), "
            f"{run.duplicated} answered more than once{logged}."
        )
    lines += ["", f"Against the target ({TARGET_RATE} events/s, nothing dropped):", ""]
    target = next((s for s in ours.steps if s.rate == TARGET_RATE), None)
    if target is not None:
        lines.append(
            f"- at {TARGET_RATE} events/s offered, policybot answered "
            f"{target.throughput:.0f} events/s = **{target.throughput / TARGET_RATE:.2f}×** "
            f"the target; ack p99 {target.ack_p99 * 1000:.0f} ms = "
            f"{target.ack_p99 / SLACK_ACK_LIMIT:.3f}× Slack's 3 s limit "
            f"({target.late_acks} acks later than 3 s)."
        )
    best = max(ours.steps, key=lambda s: s.throughput)
    lines.append(f"- highest achieved: {best.throughput:.0f} events/s (offered {best.rate}).")
    if peer is not None:
        for mine, theirs in zip(ours.steps, peer.steps, strict=True):
            lines.append(
                f"- at {mine.rate} events/s: policybot ÷ echo peer, achieved "
                f"{mine.throughput / theirs.throughput:.2f}×, end-to-end p50 "
                f"{mine.e2e_p50 / theirs.e2e_p50:.2f}× (above 1× = policybot slower)"
                if theirs.throughput and theirs.e2e_p50
                else f"- at {mine.rate} events/s: the echo peer answered nothing"
            )
    lines += [
        "",
        "Peer: `python -m bench.echo_app`, the same stack (aiohttp, bolt's AsyncApp, "
        "`/slack/events`, the access log) with a handler that echoes the text back and does "
        "nothing else: the ceiling HTTP and bolt put on any Slack bot on this machine.",
        "",
        "| server | resident after start and one event | peak resident (VmHWM) |",
        "| --- | ---: | ---: |",
    ]
    for run in runs:
        lines.append(f"| {run.name} | {run.rss_idle_mib:.0f} MiB | {run.rss_peak_mib:.0f} MiB |")
    lines += [
        "",
        f"Memory of the server process from /proc/<pid>/status after all "
        f'{sum(s.sent for s in ours.steps):,} events. "Thinking…" placeholders posted by '
        f"policybot: {ours.placeholders} (an answer slower than 1 s shows one first).",
    ]
    return "\n".join(lines)


def run_both(
    rates: Sequence[int] = RATES, seconds: float = 10.0, clients: int = 32, peer: bool = True
) -> str:
    ours = asyncio.run(load("policybot", rates, seconds, clients))
    echo = asyncio.run(load("echo", rates, seconds, clients)) if peer else None
    return markdown(ours, echo, seconds, clients)


# -- contention: a busy database beside the events ------------------------------------------------
#: How long the other process holds the write lock (a `policybot policy load`, a backup).
LOCK_SECONDS = 2.5


def big_policy() -> bytes:
    """An ordinary HTML policy of about 10 MB (9,000 paragraphs, padded with styles), within
    the reading ceilings, so it is read, stored and compared in full."""
    from bench import bombs

    return bombs.html_policy(9_000, style_bytes=1_000)


@dataclass(frozen=True)
class Contention:
    during: str
    step: Step
    note: str


async def _upload(server: Server, data: bytes) -> str:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        started = time.perf_counter()
        async with http.post(
            server.url + "/admin/policies?filename=big-policy.html",
            data=data,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as response:
            await response.read()
            return f"HTTP {response.status} after {time.perf_counter() - started:.1f} s"


def _hold_write_lock(db: Path, seconds: float, held: threading.Event) -> None:
    """Another process's write transaction, as `policybot policy load` holds one: BEGIN
    IMMEDIATE on a connection of this (the bench's) process, released after `seconds`."""
    conn = sqlite3.connect(str(db), isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def contention(
    rate: int = TARGET_RATE, seconds: float = 6.0, clients: int = 32, processes: int = 1
) -> tuple[list[Contention], int, int]:
    """(each scenario's figures, events never answered, events answered twice) for one
    `policybot serve` (of `processes` on its port): `rate` events/s for `seconds` while a
    ~10 MB upload is processed, then while another process holds the write lock for
    LOCK_SECONDS."""
    questions = bench_questions()
    data = big_policy()
    results: list[Contention] = []
    with tempfile.TemporaryDirectory(prefix="policybot-contention-") as folder:
        async with recorder() as fake:
            server = await start(
                "policybot",
                fake.url,
                Path(folder),
                Path(folder) / "serve.log",
                extra_env={"POLICYBOT_SERVE_PROCESSES": str(processes)},
            )
            assert server.db is not None
            keys: set[str] = set()
            try:
                await offer(server, fake, questions, 1, 1, 1, "W", 0, DRAIN)
                first = 1
                upload = asyncio.create_task(_upload(server, data))
                await asyncio.sleep(0.2)  # the upload's body is in; it is being processed
                step = await offer(
                    server, fake, questions, rate, seconds, clients, "U", first, DRAIN
                )
                keys |= {event_body(n, "", "U")[0] for n in range(first, first + step.sent)}
                first += step.sent
                uploaded = await upload
                results.append(
                    Contention(
                        f"a {len(data) / 2**20:.1f} MB policy upload",
                        step,
                        f"upload {uploaded}",
                    )
                )
                held = threading.Event()
                holder = threading.Thread(
                    target=_hold_write_lock, args=(server.db, LOCK_SECONDS, held), daemon=True
                )
                holder.start()
                await asyncio.to_thread(held.wait, 30)
                step = await offer(
                    server, fake, questions, rate, seconds, clients, "L", first, DRAIN
                )
                keys |= {event_body(n, "", "L")[0] for n in range(first, first + step.sent)}
                await asyncio.to_thread(holder.join)
                results.append(
                    Contention(
                        f"another process holding the write lock {LOCK_SECONDS:g} s",
                        step,
                        "the lock taken before the first event",
                    )
                )
                fake.expect(keys)
                await fake.all_answered(DRAIN)
            finally:
                stop(server)
    dropped = sum(not fake.answers.get(key) for key in keys)
    doubled = sum(len(fake.answers.get(key, ())) > 1 for key in keys)
    return results, dropped, doubled


@dataclass(frozen=True)
class ContentionRun:
    """One run of `contention`: how many processes served, and what it measured."""

    processes: int
    results: list[Contention]
    dropped: int
    doubled: int


def contention_markdown(
    runs: Sequence[ContentionRun], rate: int, seconds: float, clients: int
) -> str:
    """The table of every run, one row per scenario, and what each run lost or repeated."""
    command = f"python -m bench slack --contention --rates {rate} --seconds {seconds:g}"
    repeats = max(Counter(run.processes for run in runs).values(), default=1)
    lines = [
        f"{rate} signed Slack events/s offered for {seconds:g} s from {clients} connections to "
        "`policybot serve` (lexical, extractive, its own SQLite database), first while "
        "it processes a policy upload through the admin HTTP API, then while another "
        f"process holds the database's write lock for {LOCK_SECONDS:g} s from before the "
        "first event; as one process, then as one per core (`serve --processes N`, "
        f"the same port through SO_REUSEPORT), {repeats} runs each: the p99 of a run's "
        f"{int(rate * seconds):,} acknowledgements is set by its dozen slowest, and on a "
        "shared machine those move from run to run. Where the offered rate is more than the "
        "server answers here (answers/s: the answers over the time from the first event to "
        "the last answer), the answers queue, as end-to-end latency shows, and the "
        "acknowledgements must not. Reproduce: "
        f"`{command} --repeats {repeats}`.",
        "",
        "| processes | run | while | sent | acked | ack p50 | ack p99 | acks > 3 s | answered | "
        "answers/s | end-to-end p50 | p99 |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    numbered = list(zip(runs, _run_numbers(runs), strict=True))
    for run, number in numbered:
        for result in run.results:
            s = result.step
            lines.append(
                f"| {run.processes} | {number} | {result.during} | {s.sent} "
                f"| {s.acked} | {s.ack_p50 * 1000:.1f} ms | {s.ack_p99 * 1000:.1f} ms "
                f"| {s.late_acks} | {s.answered} | {s.throughput:.0f} | {s.e2e_p50 * 1000:.0f} ms "
                f"| {s.e2e_p99 * 1000:.0f} ms |"
            )
    lines.append("")
    for run, number in numbered:
        lines.append(
            f"- {_processes(run.processes)}, run {number}, once the server had "
            f"drained: {run.dropped} events never answered, {run.doubled} answered more than "
            "once; " + "; ".join(f"{r.during}: {r.note}" for r in run.results) + "."
        )
    return "\n".join(lines)


def _run_numbers(runs: Sequence[ContentionRun]) -> list[int]:
    """Each run's number among the runs with as many processes (1, 2, 3 for each setup)."""
    seen: Counter[int] = Counter()
    numbers = []
    for run in runs:
        seen[run.processes] += 1
        numbers.append(seen[run.processes])
    return numbers


def _processes(count: int) -> str:
    return f"{count} process{'es' if count > 1 else ''}"


def contention_target(runs: Sequence[ContentionRun], rate: int) -> str:
    """Issue 17's figure against each scenario's median ack p99 over the runs."""
    p99s: dict[tuple[int, str], list[float]] = defaultdict(list)
    for run in runs:
        for result in run.results:
            p99s[(run.processes, result.during)].append(result.step.ack_p99)
    return (
        f"Target (issue 17): ack p99 under {ACK_TARGET * 1000:.0f} ms at {rate} events/s in "
        "both, 0 lost, 0 answered twice. Median ack p99 over the runs: "
        + "; ".join(
            f"{_processes(processes)}, {during}: {statistics.median(values) * 1000:.0f} ms "
            f"= {statistics.median(values) / ACK_TARGET:.2f}× the target "
            f"({min(values) * 1000:.0f} to {max(values) * 1000:.0f} ms)"
            for (processes, during), values in p99s.items()
        )
        + f"; lost {sum(run.dropped for run in runs)}, answered twice "
        f"{sum(run.doubled for run in runs)} in all."
    )


CONTENTION_START = "<!-- slack:contention:start -->"
CONTENTION_END = "<!-- slack:contention:end -->"
#: The plain load test's part of docs/benchmarks.md (`run_both`), between these.
LOAD_START = "<!-- slack:load:start -->"
LOAD_END = "<!-- slack:load:end -->"


def load_section(
    rates: Sequence[int] = RATES, seconds: float = 10.0, clients: int = 32, *, peer: bool = True
) -> str:
    """`run_both`'s report between its markers, as docs/benchmarks.md holds it."""
    return "\n".join([LOAD_START, run_both(rates, seconds, clients, peer=peer), LOAD_END])


def contention_section(
    rate: int = TARGET_RATE, seconds: float = 6.0, clients: int = 32, repeats: int = 3
) -> str:
    """The contention scenario's part of docs/benchmarks.md, between its markers: one
    process, then one per core, `repeats` runs each."""
    runs = []
    for processes in dict.fromkeys((1, max(1, os.cpu_count() or 1))):
        for _ in range(repeats):
            results, dropped, doubled = asyncio.run(contention(rate, seconds, clients, processes))
            runs.append(ContentionRun(processes, results, dropped, doubled))
    return "\n".join(
        [
            CONTENTION_START,
            "#### Acknowledgements while the database is busy",
            "",
            contention_markdown(runs, rate, seconds, clients),
            "",
            contention_target(runs, rate),
            CONTENTION_END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench slack", description=__doc__)
    parser.add_argument("--rates", default=",".join(map(str, RATES)))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--contention", action="store_true", help="the contention scenario")
    parser.add_argument("--repeats", type=int, default=3, help="contention runs per setup")
    parser.add_argument("--out", type=Path, help="rewrite the scenario's section of this page")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    if args.contention:
        rate = rates[0] if len(rates) == 1 else TARGET_RATE
        seconds = args.seconds if args.seconds != 10.0 else 6.0
        section = contention_section(rate, seconds, args.clients, args.repeats)
        if args.out:
            write_between(args.out, CONTENTION_START, CONTENTION_END, section)
        print(section)
        return
    section = load_section(rates, args.seconds, args.clients, peer=not args.no_peer)
    if args.out:
        write_between(args.out, LOAD_START, LOAD_END, section)
    print(section)


if __name__ == "__main__":
    main()
