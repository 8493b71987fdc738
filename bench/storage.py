"""Storage past one process, measured: replicas on one PostgreSQL, the two engines side by
side, and what `serve` holds in memory.

    python -m bench replicas   # 1 vs 2 `serve` replicas on one PostgreSQL behind a proxy
    python -m bench engines    # the same Slack load on SQLite and on PostgreSQL
    python -m bench memory     # `serve`'s peak RSS with the model loaded, and its parts
    ... --out docs/benchmarks.md   # and replace that section of the page

Replicas and engines run real `policybot serve` processes against the fake Slack Web API of
bench/slack_load.py, on a throwaway PostgreSQL cluster (bench/postgres.py; the machine's
PostgreSQL server binaries). Replicas: the same signed Slack events offered to one replica,
then to two behind a round-robin loopback proxy (bench/round_robin.py), each on a fresh
database: achieved answers per second, every answer counted at the fake API (an event
answered twice is a duplicate), a share of the events sent again as Slack's retries (most of
them reach the other replica), and a reviewed answer for many askers stored while both
replicas' delivery loops run, each asker's copies counted at the fake API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import slack_load
from bench.postgres import Cluster, running_cluster
from bench.round_robin import PROXIES, Proxy, round_robin
from bench.sections import write_between
from bench.slack_load import (
    DRAIN,
    ROOT,
    Recorder,
    Server,
    Step,
    bench_questions,
    event_body,
    offer,
    recorder,
    sign,
    start,
    stop,
)
from bench.speed import percentile

BENCHMARKS = ROOT / "docs" / "benchmarks.md"
START = "<!-- storage:{name}:start -->"
END = "<!-- storage:{name}:end -->"
#: An uncovered question many askers send; the reviewed answer every one of them is owed.
UNCOVERED = "can I expense LinkedIn Premium?"
REVIEWED = "Yes, up to 30 USD a month; file it under training (bench reviewed answer)."
REVIEW_ASKERS = 40
#: Seconds between delivery runs in each replica: short, so both race for every asker.
DELIVERY_INTERVAL = "0.5"
#: Events/s offered to one replica and then to two: above what two answer on this machine's
#: two cores, so the ratio is not capped by the offered rate (with statements prepared on
#: the server two replicas answered all of 150/s, 1.50× one).
REPLICAS_RATE = 250
#: The share of the events sent again, as Slack retries an event it thinks was not acked.
RETRIED_SHARE = 0.25


class CountingRecorder(Recorder):
    """The fake Slack Web API, also counting each DM channel's copies of the reviewed answer
    (apart from the answers to events)."""

    def __init__(self) -> None:
        super().__init__()
        self.reviewed: Counter[str] = Counter()

    def _note(self, method: str, payload: dict[str, Any], ts: str, now: float) -> None:
        if REVIEWED in str(payload.get("text", "")):
            # An asker is their DM, or their thread in a channel (a mention).
            asker = f"{payload.get('channel', '')}/{payload.get('thread_ts', '')}"
            self.reviewed[asker] += 1
            return
        super()._note(method, payload, ts, now)


# -- what each process spent ---------------------------------------------------------------
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every core since boot, every process counted."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(t) for t in first[:8]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def postgres_pids(cluster: Cluster) -> list[int]:
    """The cluster's postmaster and every process it started (backends, writers)."""
    head = (cluster.folder / "data" / "postmaster.pid").read_text().split()
    postmaster = int(head[0])
    found = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                found.append(int(stat.parent.name))
    return found


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds each part spent over one measured step, and the whole machine's."""

    wall: float
    replicas: list[float]
    postgres: float
    proxy: float | None  # None: the proxy ran in the bench's process
    bench: float  # load generator and fake Slack API (and the proxy when in-process)
    machine_busy: float  # cores busy, every process on the machine counted
    cores: int

    @property
    def ours(self) -> float:
        return sum(self.replicas) + self.postgres + (self.proxy or 0.0) + self.bench


@dataclass
class CpuMeter:
    """Samples the processes of a run before and after a step."""

    replicas: list[int]
    cluster: Cluster
    proxy: Proxy
    _before: dict[int, float] = field(default_factory=dict)
    _machine: tuple[int, int] = (0, 0)
    _started: float = 0.0

    def _pids(self) -> dict[str, list[int]]:
        return {
            "replicas": self.replicas,
            "postgres": postgres_pids(self.cluster),
            "proxy": self.proxy.pids(),
            "bench": [os.getpid()],
        }

    def start(self) -> None:
        self._before = {pid: cpu_seconds(pid) for pids in self._pids().values() for pid in pids}
        self._machine = machine_ticks()
        self._started = time.monotonic()

    def stop(self) -> CpuUse:
        wall = time.monotonic() - self._started
        busy, total = machine_ticks()
        pids = self._pids()

        def spent(pid: int) -> float:
            # A process started during the step (a new backend) counts from zero.
            return max(cpu_seconds(pid) - self._before.get(pid, 0.0), 0.0)

        cores = os.cpu_count() or 1
        ticks = (total - self._machine[1]) or 1
        return CpuUse(
            wall=wall,
            replicas=[spent(pid) for pid in pids["replicas"]],
            postgres=sum(spent(pid) for pid in pids["postgres"]),
            proxy=sum(spent(pid) for pid in pids["proxy"]) if pids["proxy"] else None,
            bench=spent(os.getpid()),
            machine_busy=cores * (busy - self._machine[0]) / ticks,
            cores=cores,
        )


# -- the load, signed before the clock starts --------------------------------------------
@dataclass
class _Request:
    key: str
    body: bytes
    headers: dict[str, str]
    scheduled: float = 0.0
    acked_at: float | None = None
    status: int = 0


def signed_events(questions: Sequence[str], count: int, run: str, first: int) -> list[_Request]:
    """`count` events, each body built and signed now (Slack accepts a signature for five
    minutes), so sending one costs the bench a write, not JSON and an HMAC."""
    timestamp = str(int(time.time()))
    requests = []
    for i in range(count):
        key, body = event_body(first + i, questions[i % len(questions)], run)
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(body, timestamp),
        }
        requests.append(_Request(key, body, headers))
    return requests


async def offer_signed(
    url: str,
    fake: Recorder,
    requests: list[_Request],
    rate: int,
    clients: int,
    drain: float,
    meter: CpuMeter | None = None,
) -> tuple[Step, CpuUse | None]:
    """Send the signed requests at `rate` per second from `clients` connections, wait (at
    most `drain` seconds) for every answer at the fake API; the step's figures as
    bench/slack_load.py counts them (latencies from each event's scheduled send time), and
    what each process spent meanwhile."""
    fake.expect({r.key for r in requests})
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def send(request: _Request) -> None:
            try:
                async with http.post(
                    url + "/slack/events", data=request.body, headers=request.headers
                ) as response:
                    await response.read()
                    request.status = response.status
            except aiohttp.ClientError:
                request.status = -1
            request.acked_at = time.perf_counter()

        if meter is not None:
            meter.start()
        started = time.perf_counter()
        tasks = []
        for i, request in enumerate(requests):
            request.scheduled = started + i / rate
            delay = request.scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(request)))
        await asyncio.gather(*tasks)
        await fake.all_answered(drain)
        used = meter.stop() if meter is not None else None
        await asyncio.sleep(0.5)  # a duplicate would follow its original closely
    acks = [r.acked_at - r.scheduled for r in requests if r.status == 200 and r.acked_at]
    answered = [r for r in requests if fake.answers.get(r.key)]
    e2e = [fake.answers[r.key][-1] - r.scheduled for r in answered]
    last = max((fake.answers[r.key][-1] for r in answered), default=started)
    step = Step(
        rate=rate,
        seconds=len(requests) / rate,
        sent=len(requests),
        acked=len(acks),
        ack_p50=percentile(acks, 0.5) if acks else 0.0,
        ack_p99=percentile(acks, 0.99) if acks else 0.0,
        late_acks=sum(a > 3.0 for a in acks),
        answered=len(answered),
        unanswered=len(requests) - len(answered),
        duplicated=sum(len(fake.answers[r.key]) > 1 for r in answered),
        e2e_p50=percentile(e2e, 0.5) if e2e else 0.0,
        e2e_p99=percentile(e2e, 0.99) if e2e else 0.0,
        throughput=len(answered) / (last - started) if answered and last > started else 0.0,
        logged=None,
    )
    return step, used


@dataclass(frozen=True)
class ReplicaRun:
    replicas: int
    step: Step
    retried: int
    answered_twice: int  # events (first sends and retries) answered more than once
    reviewed_askers: int
    reviewed_delivered: int  # askers who got the reviewed answer
    reviewed_twice: int  # askers who got it more than once
    split: list[int]  # requests each replica received through the proxy
    cpu: CpuUse | None = None
    proxy: str = ""


def _signed_headers(body: bytes) -> dict[str, str]:
    """The headers Slack sends an event with, signed now."""
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(body, timestamp),
    }


async def _send_retries(url: str, bodies: Sequence[bytes]) -> int:
    """Slack's retries of already-acknowledged events: the same body, X-Slack-Retry-Num."""
    ok = 0
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            headers = _signed_headers(body) | {
                "X-Slack-Retry-Num": "1",
                "X-Slack-Retry-Reason": "http_timeout",
            }
            async with http.post(url + "/slack/events", data=body, headers=headers) as response:
                await response.read()
                ok += response.status == 200
    return ok


def _store_reviewed_answer(database_url: str) -> int:
    """A reviewer's answer to the group of REVIEW_ASKERS, stored (not sent: the replicas'
    delivery loops send it); the askers in it."""
    from bot.config import Settings
    from bot.core import PolicyBot

    settings = Settings(retriever="lexical").with_db(database_url)
    bot = PolicyBot.create(settings)
    try:
        groups = [g for g in bot.review.queue() if g.sample == UNCOVERED]
        if not groups:
            return 0
        group = max(groups, key=lambda g: g.count)
        bot.review.answer(group.id, REVIEWED, "bench")
        return group.count
    finally:
        bot.mark.release()
        bot.storage.close()


async def replica_run(
    cluster: Cluster,
    replicas: int,
    rate: int,
    seconds: float,
    clients: int,
    folder: Path,
    which_proxy: str = "auto",
) -> ReplicaRun:
    url = cluster.new_database()
    questions = bench_questions()
    fake = CountingRecorder()
    try:
        async with recorder(fake):
            servers = [
                await start(
                    f"replica{n}",
                    fake.url,
                    folder,
                    folder / f"replica{n}-of-{replicas}.log",
                    database_url=url,
                    extra_env={"POLICYBOT_DELIVERY_INTERVAL": DELIVERY_INTERVAL},
                )
                for n in range(replicas)
            ]
            try:
                async with round_robin([s.url for s in servers], which_proxy) as (port, proxy):
                    front = Server(f"{replicas} replicas", servers[0].process, port, None, url)
                    for n in range(replicas):  # warm each replica up, outside the figures
                        await offer(front, fake, questions, 1, 1, 1, f"W{n}", 0, DRAIN)
                    count = int(rate * seconds)
                    requests = signed_events(questions, count, "R", 1)
                    meter = CpuMeter([s.process.pid for s in servers], cluster, proxy)
                    proxy.reset()
                    step, used = await offer_signed(
                        front.url, fake, requests, rate, clients, DRAIN, meter
                    )
                    split = proxy.sent()
                    numbers = range(1, 1 + step.sent)
                    retried = [n for n in numbers if n % round(1 / RETRIED_SHARE) == 0]
                    bodies = [
                        event_body(n, questions[(n - 1) % len(questions)], "R")[1] for n in retried
                    ]
                    await _send_retries(front.url, bodies)
                    # The askers of one uncovered question, each in a DM of their own.
                    askers = [
                        event_body(n, UNCOVERED, "Q")
                        for n in range(1, 2 * REVIEW_ASKERS + 1)
                        if n % 2 == 1  # odd numbers are DMs
                    ]
                    fake.expect({key for key, _ in askers})
                    await _send_firsts(front.url, [body for _, body in askers])
                    await fake.all_answered(DRAIN)
                    owed = await asyncio.to_thread(_store_reviewed_answer, url)
                    deadline = time.monotonic() + DRAIN
                    while len(fake.reviewed) < owed and time.monotonic() < deadline:
                        await asyncio.sleep(0.2)
                    await asyncio.sleep(3 * float(DELIVERY_INTERVAL) + 1)  # a second copy
                    proxy_name = proxy.name
            finally:
                for server in servers:
                    stop(server)
        keys = {event_body(n, "", "R")[0] for n in numbers}
        return ReplicaRun(
            replicas=replicas,
            step=step,
            retried=len(retried),
            answered_twice=sum(len(fake.answers.get(k, ())) > 1 for k in keys),
            reviewed_askers=owed,
            reviewed_delivered=len(fake.reviewed),
            reviewed_twice=sum(c > 1 for c in fake.reviewed.values()),
            split=split,
            cpu=used,
            proxy=proxy_name,
        )
    finally:
        cluster.drop(url)


async def _send_firsts(url: str, bodies: Sequence[bytes]) -> None:
    """Events sent once each, one after another (the askers of the reviewed answer)."""
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            headers = _signed_headers(body)
            async with http.post(url + "/slack/events", data=body, headers=headers) as response:
                await response.read()


def replicas_markdown(
    runs: list[ReplicaRun], rate: int, seconds: float, clients: int, which_proxy: str = "auto"
) -> str:
    one, two = runs[0], runs[-1]
    ratio = two.step.throughput / one.step.throughput if one.step.throughput else 0.0
    command = f"python -m bench replicas --rate {rate} --seconds {seconds:g} --clients {clients}"
    if which_proxy != "auto":
        command += f" --proxy {which_proxy}"
    proxy = two.proxy or one.proxy
    lines = [
        f"{rate} signed Slack events/s offered for {seconds:g} s from {clients} connections "
        "to one `policybot serve` on PostgreSQL, then to two replicas on one PostgreSQL "
        "database behind a round-robin proxy on 127.0.0.1 (lexical, extractive; each run on "
        f"a fresh database; proxy: {proxy}, in both runs). The events are built and signed "
        "before the clock starts. Then "
        f"{RETRIED_SHARE:.0%} of the events are sent again as "
        f"Slack's retries, and {REVIEW_ASKERS} people ask one uncovered question by DM; a "
        "reviewer's answer to their group is stored while every replica's delivery loop "
        f"runs every {DELIVERY_INTERVAL} s. Every message counted at the fake Slack Web API. "
        f"Reproduce: `{command}`.",
        "",
        "| replicas | requests per replica | acked | ack p50 | ack p99 | answered "
        "| achieved events/s | end-to-end p50 | p99 | retries sent | events answered twice "
        "| reviewed answer: askers | delivered | delivered twice |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for run in runs:
        s = run.step
        lines.append(
            f"| {run.replicas} | {' / '.join(map(str, run.split))} | {s.acked} "
            f"| {s.ack_p50 * 1000:.1f} ms | {s.ack_p99 * 1000:.1f} ms | {s.answered} "
            f"| {s.throughput:.0f} | {s.e2e_p50 * 1000:.0f} ms | {s.e2e_p99 * 1000:.0f} ms "
            f"| {run.retried} | {run.answered_twice} | {run.reviewed_askers} "
            f"| {run.reviewed_delivered} | {run.reviewed_twice} |"
        )
    lines += [
        "",
        f"Two replicas ÷ one: **{ratio:.2f}×** the achieved throughput (target ≥ 1.6×); "
        f"{sum(r.answered_twice for r in runs)} events answered twice and "
        f"{sum(r.reviewed_twice for r in runs)} reviewed answers delivered twice over both "
        "runs.",
    ]
    measured = [run for run in runs if run.cpu is not None]
    if measured:
        lines += [
            "",
            "CPU seconds each process spent over the measured step (from its first event to "
            "its last answer; /proc/<pid>/stat), and how busy the whole machine was, every "
            "process on it counted (/proc/stat):",
            "",
            "| replicas | wall | each replica | per answer (replicas) | PostgreSQL "
            "| per answer (PostgreSQL) | proxy | bench process | ours, cores | machine busy |",
            "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for run in measured:
            cpu = run.cpu
            assert cpu is not None
            answered = max(run.step.answered, 1)
            proxy_cell = "in the bench process" if cpu.proxy is None else f"{cpu.proxy:.1f} s"
            lines.append(
                f"| {run.replicas} | {cpu.wall:.1f} s "
                f"| {' / '.join(f'{r:.1f} s' for r in cpu.replicas)} "
                f"| {sum(cpu.replicas) / answered * 1000:.1f} ms | {cpu.postgres:.1f} s "
                f"| {cpu.postgres / answered * 1000:.1f} ms | {proxy_cell} "
                f"| {cpu.bench:.1f} s | {cpu.ours / cpu.wall:.2f} of {cpu.cores} "
                f"| {cpu.machine_busy:.2f} of {cpu.cores} |"
            )
        cpu2 = two.cpu
        if cpu2 is not None:
            others = max(cpu2.machine_busy - cpu2.ours / cpu2.wall, 0.0)
            saturated = cpu2.machine_busy >= 0.9 * cpu2.cores
            per_answer = cpu2.ours / max(two.step.answered, 1)
            lines += [
                "",
                f"Every process of the two-replica run together spent {per_answer * 1000:.1f} ms "
                f"of CPU per answer: {cpu2.cores} free cores would carry at most "
                f"{cpu2.cores / per_answer:.0f} answers/s at that cost, and the "
                f"{cpu2.ours / cpu2.wall:.2f} cores this bench got carried "
                f"{two.step.throughput:.0f}.",
            ]
            lines += [
                "",
                f"With two replicas the machine was {cpu2.machine_busy / cpu2.cores:.0%} busy "
                f"({cpu2.ours / cpu2.wall:.2f} cores this bench's processes, "
                f"{others:.2f} anything else on the machine): "
                + (
                    "saturated, so the figure is bounded by the cores this bench could get."
                    if saturated
                    else "not saturated, so the replicas were waiting on something other "
                    "than CPU (the database's round trips, a lock)."
                ),
            ]
    return "\n".join(lines)


# -- the engines side by side ----------------------------------------------------------------
@dataclass(frozen=True)
class EngineRun:
    engine: str
    steps: list[Step]


async def engine_run(
    engine: str,
    cluster: Cluster | None,
    rates: Sequence[int],
    seconds: float,
    clients: int,
    folder: Path,
) -> EngineRun:
    questions = bench_questions()
    url = cluster.new_database() if cluster is not None else ""
    try:
        async with recorder() as fake:
            server = await start(
                "policybot", fake.url, folder, folder / f"{engine}.log", database_url=url
            )
            try:
                await offer(server, fake, questions, 1, 1, 1, "W", 0, DRAIN)
                steps, first = [], 1
                for n, rate in enumerate(rates):
                    step = await offer(
                        server, fake, questions, rate, seconds, clients, f"E{n}", first, DRAIN
                    )
                    steps.append(step)
                    first += step.sent
            finally:
                stop(server)
        return EngineRun(engine, steps)
    finally:
        if cluster is not None and url:
            cluster.drop(url)


def engines_markdown(runs: list[EngineRun], seconds: float, clients: int) -> str:
    rates = ",".join(str(s.rate) for s in runs[0].steps)
    command = f"python -m bench engines --rates {rates} --seconds {seconds:g} --clients {clients}"
    lines = [
        f"The same signed Slack events ({seconds:g} s per offered rate, {clients} connections) "
        "to one `policybot serve` on its SQLite file, then to one on PostgreSQL (the "
        "throwaway cluster on 127.0.0.1, fsync off as in the tests, so this compares the "
        f"engines' work, not disks). Reproduce: `{command}`.",
        "",
        "| engine | offered events/s | acked | acks/s | ack p50 | ack p99 | answered "
        "| reply p50 | reply p99 | achieved events/s | logged |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        for s in run.steps:
            lines.append(
                f"| {run.engine} | {s.rate} | {s.acked} | {s.acked / s.seconds:.0f} "
                f"| {s.ack_p50 * 1000:.1f} ms | {s.ack_p99 * 1000:.1f} ms | {s.answered} "
                f"| {s.e2e_p50 * 1000:.0f} ms | {s.e2e_p99 * 1000:.0f} ms "
                f"| {s.throughput:.0f} | {s.logged} |"
            )
    return "\n".join(lines)


# -- memory ----------------------------------------------------------------------------------
#: Run in a fresh interpreter: resident memory after each part `serve` loads, in the order it
#: loads them. /proc's VmRSS (now) and VmHWM (peak).
PARTS = r"""
import json, sys
from pathlib import Path

def rss():
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]

out = [("interpreter", *rss())]
import bot.cli, bot.core
out.append(("the CLI and the core (click, sqlite-utils, which imports numpy, the stemmer)", *rss()))
import adapters.server
out.append(("the server (aiohttp, the console's routes, the admin API)", *rss()))
import adapters.slack.app
out.append(("the Slack adapter (Bolt, slack_sdk)", *rss()))
from bot.retrieval import minilm
from bot.retrieval.semantic import model_folder
folder = model_folder()
tokenizer = minilm.MiniLM._tokenizer(folder / "tokenizer.json")
out.append(("tokenizer (tokenizers, tokenizer.json)", *rss()))
model = minilm.load(folder)
del tokenizer
out.append(("model weights (memory-mapped: paged in by the first run, below)", *rss()))
from bot.store.database import Storage
from bot.policies import PolicyLibrary
from bot.config import BUNDLED_POLICIES_DIR
from bot.retrieval.semantic import HybridRetriever, MiniLMEmbedder
storage = Storage.memory()
PolicyLibrary(storage).load_bundled(BUNDLED_POLICIES_DIR)
embedder = MiniLMEmbedder.__new__(MiniLMEmbedder)
embedder.model, embedder.name, embedder.dimensions = model, model.name, model.dimensions
retriever = HybridRetriever(storage, embedder)
versions = [v.id for v in storage.active_versions()]
retriever.retrieve("may I post photos of the office?", versions, 5)
clauses = len(storage.clauses(versions))
out.append((f"the weights paged in, {clauses} clause vectors and one question", *rss()))
# What `serve` loads only when a request needs it, each after those above it.
later = []
def first_use(name, load):
    before = rss()[0]
    load()
    later.append((name, rss()[0] - before))
first_use("an LLM configured (httpx)", lambda: __import__("httpx"))
first_use("a console sign-in through an identity provider (PyJWT, cryptography)",
          lambda: __import__("adapters.jwks"))
first_use("the console's first page (Jinja2)",
          lambda: __import__("adapters.web.render").web.render.environment())
first_use("a digest with its chart (Pillow)", lambda: (__import__("PIL.Image"),
          __import__("PIL.ImageDraw")))
first_use("Teams configured (the Agents SDK, pydantic, msal)",
          lambda: __import__("adapters.teams.app"))
first_use("a PostgreSQL database (psycopg)", lambda: __import__("psycopg"))
weights = folder / "model.safetensors"
print(json.dumps({
    "parts": out,
    "later": later,
    "clauses": clauses,
    "dimensions": model.dimensions,
    "weights_bytes": weights.stat().st_size,
    "table_bytes": model.word_embeddings.rows * model.dimensions * 4,
    "token_budget": minilm.TOKEN_BUDGET,
}))
"""


@dataclass(frozen=True)
class MemoryRun:
    serve_idle_kib: int
    serve_peak_kib: int
    questions: int
    parts: list[tuple[str, int, int]]
    later: list[tuple[str, int]]
    clauses: int
    dimensions: int
    weights_bytes: int
    table_bytes: int
    token_budget: int


async def memory_run(folder: Path, questions: int = 200) -> MemoryRun:
    done = subprocess.run(
        [sys.executable, "-c", PARTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={
            **slack_load.server_env("http://127.0.0.1:9/api/", None),
            "POLICYBOT_RETRIEVER": "semantic",
        },
    )
    if done.returncode != 0:
        raise RuntimeError(f"measuring the parts failed:\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    asked = bench_questions()
    async with recorder() as fake:
        server = await start(
            "policybot",
            fake.url,
            folder,
            folder / "memory.log",
            extra_env={"POLICYBOT_RETRIEVER": "semantic"},
        )
        try:
            await offer(server, fake, asked, 1, 1, 1, "W", 0, DRAIN)
            idle, _ = server.memory_kib()
            await offer(server, fake, asked, 20, questions / 20, 8, "M", 1, DRAIN)
            _, peak = server.memory_kib()
        finally:
            stop(server)
    return MemoryRun(
        idle,
        peak,
        questions,
        [(str(n), int(r), int(p)) for n, r, p in measured["parts"]],
        [(str(n), int(added)) for n, added in measured["later"]],
        measured["clauses"],
        measured["dimensions"],
        measured["weights_bytes"],
        measured["table_bytes"],
        measured["token_budget"],
    )


def memory_markdown(run: MemoryRun) -> str:
    lines = [
        "`policybot serve` with the default install (`make setup`: the semantic retriever, "
        "all-MiniLM-L6-v2 in numpy), the bundled policy, Slack configured: resident memory "
        f"after start and one question, and its peak (VmHWM) after {run.questions} more "
        f"Slack questions at 20/s. Reproduce: `python -m bench memory`.",
        "",
        f"- serve: **{run.serve_peak_kib / 1024:.0f} MiB peak** (target < 300 MB = "
        f"{300e6 / 2**20:.0f} MiB), {run.serve_idle_kib / 1024:.0f} MiB after the first "
        "question.",
        "",
        "What each part costs, loaded one after another in a fresh interpreter in `serve`'s "
        "order (resident memory added by each; the peak includes the model's activations "
        "for one batch):",
        "",
        "| part | adds | resident after | peak after |",
        "| --- | ---: | ---: | ---: |",
    ]
    previous = 0
    for name, resident, peak in run.parts:
        lines.append(
            f"| {name} | {(resident - previous) / 1024:+.0f} MiB | {resident / 1024:.0f} MiB "
            f"| {peak / 1024:.0f} MiB |"
        )
        previous = resident
    vectors = run.clauses * run.dimensions * 4
    mapped = run.weights_bytes - run.table_bytes
    lines += [
        "",
        f"The clause vectors themselves are {run.clauses} × {run.dimensions} float32 = "
        f"{vectors / 2**10:.0f} KiB; that row is mostly the encoder layers' weights "
        f"({mapped / 1e6:.0f} MB of the {run.weights_bytes / 1e6:.0f} MB file, a read-only "
        "map shared by every process on the machine; the word-piece table, "
        f"{run.table_bytes / 1e6:.0f} MB, is read from the file a row at a time and never "
        "mapped in) and the encoder's working memory while it embeds the clauses (batches of "
        f"at most {run.token_budget:,} word pieces, GELU a slice at a time).",
        "",
        "Loaded only when a request needs it, not at start (resident memory each adds, "
        "loaded in this order after everything above):",
        "",
        "| when | adds |",
        "| --- | ---: |",
    ]
    lines += [f"| {name} | {added / 1024:+.0f} MiB |" for name, added in run.later]
    return "\n".join(lines)


# -- the page --------------------------------------------------------------------------------
TITLES = {
    "replicas": "### Two replicas on one PostgreSQL",
    "engines": "### SQLite and PostgreSQL side by side",
    "memory": "### serve's memory with the model loaded",
}


def block(name: str, section: str) -> str:
    return f"{START.format(name=name)}\n{TITLES[name]}\n\n{section}\n{END.format(name=name)}"


def write_section(name: str, section: str, path: Path = BENCHMARKS) -> None:
    """Put the section between its markers in the page, or at its end the first time."""
    write_between(path, START.format(name=name), END.format(name=name), block(name, section))


async def run(
    what: str,
    rate: int = REPLICAS_RATE,
    rates: Sequence[int] = (50, 100),
    seconds: float = 6.0,
    clients: int = 32,
    which_proxy: str = "auto",
) -> str:
    with tempfile.TemporaryDirectory(prefix="policybot-storage-") as name:
        folder = Path(name)
        if what == "memory":
            return memory_markdown(await memory_run(folder))
        for sub in ("sqlite", "postgresql"):
            (folder / sub).mkdir()
        with running_cluster() as cluster:
            if what == "replicas":
                runs = [
                    await replica_run(cluster, n, rate, seconds, clients, folder, which_proxy)
                    for n in (1, 2)
                ]
                return replicas_markdown(runs, rate, seconds, clients, which_proxy)
            engines = [
                await engine_run("sqlite", None, rates, seconds, clients, folder / "sqlite"),
                await engine_run(
                    "postgresql", cluster, rates, seconds, clients, folder / "postgresql"
                ),
            ]
            return engines_markdown(engines, seconds, clients)


def sections() -> str:
    """Every section, marked, for `bench all`."""
    return "\n\n".join(block(what, asyncio.run(run(what))) for what in TITLES)


def main(what: str, argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m bench {what}", description=__doc__)
    parser.add_argument(
        "--rate", type=int, default=REPLICAS_RATE, help="replicas: events/s offered"
    )
    parser.add_argument("--rates", default="50,100", help="engines: the rates offered")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--proxy",
        choices=PROXIES,
        default="auto",
        help="replicas: the round-robin proxy (auto: nginx where installed, else aiohttp)",
    )
    parser.add_argument("--out", type=Path, help="replace this section of the page")
    args = parser.parse_args(list(argv))
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    section = asyncio.run(run(what, args.rate, rates, args.seconds, args.clients, args.proxy))
    print(block(what, section), flush=True)
    if args.out:
        write_section(what, section, args.out)
