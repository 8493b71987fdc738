"""Hostile uploads through a real `policybot serve`: does the server stay small and responsive?

    python -m bench uploads                         # print the table
    python -m bench uploads --out docs/benchmarks.md  # and replace its section there

For each file (compression bombs, a lying ZIP directory, a huge Markdown policy, a PDF bomb, a
big ordinary HTML policy), uploaded through the admin API (`POST /admin/policies`), this polls
`/healthz` every 20 ms, sends a signed Slack event every 250 ms and samples the server's
resident memory from /proc, from the upload's start to its reply. Targets: the server under
300 MB RSS and `/healthz` within 100 ms while any file within the upload limit is read;
Slack's own limit for an acknowledgement is 3 s. The reading child process is not the server:
its memory is capped by POLICYBOT_UPLOAD_READ_MEMORY_MB, and it is killed at the deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import bombs
from bench.slack_load import (
    SECRET,
    Server,
    event_body,
    free_port,
    recorder,
    server_env,
    sign,
)
from bench.speed import percentile, policybot_command

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- UPLOADS:START -->", "<!-- UPLOADS:END -->"
ADMIN_TOKEN = "bench-admin-token"
RSS_TARGET_MB = 300.0
HEALTHZ_TARGET_MS = 100.0
SLACK_ACK_LIMIT_MS = 3000.0
POLL_SECONDS = 0.02
SLACK_EVERY_SECONDS = 0.25
MB = 2**20


@dataclass(frozen=True)
class Case:
    label: str
    filename: str
    make: Callable[[], bytes]
    #: Bombs are sent with ?activate=1 (a refusal must leave the active policy as it was);
    #: files that are accepted are only staged, so the Slack questions sent meanwhile are
    #: answered from the same small bundled policy in every row.
    activate: bool = True


CASES = [
    Case(
        "DOCX bomb: 1.1 GB of paragraphs",
        "policy.docx",
        lambda: bombs.docx_paragraph_bomb(1100 * MB),
    ),
    Case(
        "DOCX bomb: 250 MB of paragraphs",
        "policy.docx",
        lambda: bombs.docx_paragraph_bomb(250 * MB),
    ),
    Case(
        "DOCX bomb: one 1.1 GB text node",
        "policy.docx",
        lambda: bombs.docx_text_node_bomb(1100 * MB),
    ),
    Case(
        "DOCX: a 30 MB text node (within the unpack limit)",
        "policy.docx",
        lambda: bombs.docx_text_node_bomb(30 * MB),
    ),
    Case(
        "DOCX: a 7 MB text node (read, then past the clause ceiling)",
        "policy.docx",
        lambda: bombs.docx_text_node_bomb(7 * MB),
    ),
    Case(
        "DOCX: 35 MB of paragraphs (within the unpack limit)",
        "policy.docx",
        lambda: bombs.docx_paragraph_bomb(35 * MB),
    ),
    Case(
        "DOCX: content nested 100,000 deep", "policy.docx", lambda: bombs.docx_nesting_bomb(100_000)
    ),
    Case(
        "DOCX: ZIP directory declares 1 KB for 1.1 GB",
        "policy.docx",
        lambda: bombs.docx_lying_directory(1100 * MB),
    ),
    Case("Markdown: 86,000 sections", "policy.md", lambda: bombs.markdown_sections(86_000)),
    Case(
        "PDF: one stream inflating to 1 GB", "policy.pdf", lambda: bombs.pdf_stream_bomb(1024 * MB)
    ),
    Case(
        "HTML: big ordinary policy",
        "policy.html",
        lambda: bombs.html_policy(9_000, style_bytes=800),
    ),
    Case(
        "Markdown: the bundled policy (small, accepted)",
        "policy.md",
        lambda: (ROOT / "policies" / "social-media-and-electronic-communication.md").read_bytes(),
    ),
]


@dataclass
class Measured:
    case: Case
    size: int
    status: int = 0
    message: str = ""
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    healthz_ms: list[float] = field(default_factory=list)
    healthz_failures: int = 0
    acks_ms: list[float] = field(default_factory=list)
    active_unchanged: bool = True

    def outcome(self) -> str:
        if self.status in (200, 201):
            return "accepted"
        short = re.sub(r"\s+", " ", self.message)
        short = short.split(": ", 1)[-1] if short.startswith("policy.") else short
        return f"refused ({self.status}): {short[:110]}{'…' if len(short) > 110 else ''}"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def start_server(folder: Path, api_url: str) -> Server:
    import subprocess

    db = folder / "serve.db"
    env = server_env(api_url, db) | {"POLICYBOT_ADMIN_TOKEN": ADMIN_TOKEN}
    subprocess.run(
        [*policybot_command(), "policy", "list"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    port = free_port()
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [*policybot_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server("policybot", process, port, db)
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited; see {folder / 'serve.log'}")
            try:
                async with http.get(server.url + "/healthz") as response:
                    if response.status == 200:
                        return server
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError("serve did not start within 30 s")


async def active_versions(http: aiohttp.ClientSession, server: Server) -> list[Any]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with http.get(server.url + "/admin/policies", headers=headers) as response:
        listed = await response.json()
    return sorted(d["active"] for d in listed["documents"] if d["active"] is not None)


async def measure(http: aiohttp.ClientSession, server: Server, case: Case, run: int) -> Measured:
    data = case.make()
    measured = Measured(case, len(data))
    before = await active_versions(http, server)
    done = asyncio.Event()

    async def poll_health() -> None:
        while not done.is_set():
            started = time.perf_counter()
            try:
                async with http.get(server.url + "/healthz") as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            measured.healthz_ms.append((time.perf_counter() - started) * 1000)
            measured.healthz_failures += not ok
            measured.peak_rss_mb = max(measured.peak_rss_mb, rss_mb(server.process.pid))
            await asyncio.sleep(POLL_SECONDS)

    async def send_slack() -> None:
        number = 0
        while not done.is_set():
            number += 1
            _, body = event_body(number, "may I post about our roadmap?", f"U{run}")
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": sign(body, timestamp),
            }
            started = time.perf_counter()
            with_error = False
            try:
                async with http.post(
                    server.url + "/slack/events", data=body, headers=headers
                ) as response:
                    await response.read()
                    with_error = response.status != 200
            except aiohttp.ClientError:
                with_error = True
            if not with_error:
                measured.acks_ms.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(SLACK_EVERY_SECONDS)

    pollers = [asyncio.create_task(poll_health()), asyncio.create_task(send_slack())]
    started = time.perf_counter()
    try:
        async with http.post(
            f"{server.url}/admin/policies?filename={case.filename}&name=bench-{run}"
            f"&activate={int(case.activate)}",
            data=data,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=aiohttp.ClientTimeout(total=600),
        ) as response:
            measured.status = response.status
            body = await response.json()
            measured.message = str(body.get("error") or body.get("summary", ""))
    finally:
        measured.seconds = time.perf_counter() - started
        done.set()
        await asyncio.gather(*pollers)
    after = await active_versions(http, server)
    measured.active_unchanged = after == before or measured.status in (200, 201)
    return measured


async def run_all(only: str = "", keep_log: Path | None = None) -> list[Measured]:
    """Every case (or those whose label contains `only`) through one server; `keep_log`
    copies the server's output there (PYTHONASYNCIODEBUG=1 makes it name slow callbacks)."""
    assert SECRET  # the server verifies the bench's signatures with the same secret
    results = []
    with tempfile.TemporaryDirectory(prefix="policybot-uploads-") as folder:
        async with recorder() as fake:
            server = await start_server(Path(folder), fake.url)
            try:
                async with aiohttp.ClientSession() as http:
                    # One small upload first: the first one also starts the thread pool.
                    await measure(http, server, CASES[-1], -1)
                    for run, case in enumerate(CASES):
                        wanted = [w.strip().lower() for w in only.split(",")]
                        if not any(w in case.label.lower() for w in wanted):
                            continue
                        result = await measure(http, server, case, run)
                        print(
                            f"{case.label}: {result.outcome()[:60]} in {result.seconds:.1f} s",
                            flush=True,
                        )
                        results.append(result)
            finally:
                server.process.terminate()
                server.process.wait(10)
                if keep_log is not None:
                    shutil.copyfile(Path(folder) / "serve.log", keep_log)
    return results


def _ms(values: list[float], share: float | None = None) -> str:
    if not values:
        return "—"
    return f"{(max(values) if share is None else percentile(values, share)):.0f} ms"


def markdown(results: list[Measured]) -> str:
    lines = [
        "Hostile and huge files uploaded, one after another, through the admin API of a real "
        "`policybot serve` process (default `POLICYBOT_MAX_UPLOAD_BYTES` of 10 MB; bombs with "
        "`?activate=1`, the files accepted only staged, each row its own document), while "
        "`/healthz` is polled every 20 ms and a signed Slack event is "
        "sent every 250 ms. Server RSS is sampled from /proc at each poll; the child process "
        "that reads the upload is not the server and is capped by "
        "`POLICYBOT_UPLOAD_READ_MEMORY_MB` and `POLICYBOT_UPLOAD_READ_SECONDS`. Targets: "
        f"server RSS under {RSS_TARGET_MB:.0f} MB, `/healthz` within {HEALTHZ_TARGET_MS:.0f} ms; "
        "Slack wants an acknowledgement within 3 s. Reproduce: `python -m bench uploads`.",
        "",
        "| file | on disk | outcome | upload took | server peak RSS (target 300 MB) "
        "| /healthz p95 | /healthz max (target 100 ms) | Slack ack max (limit 3 s) "
        "| active policy kept |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in results:
        kept = "—" if m.status in (200, 201) else ("yes" if m.active_unchanged else "**no**")
        failures = f" ({m.healthz_failures} failed)" if m.healthz_failures else ""
        lines.append(
            f"| {m.case.label} | {m.size / MB:.2f} MB | {m.outcome()} | {m.seconds:.2f} s "
            f"| {m.peak_rss_mb:.0f} MB | {_ms(m.healthz_ms, 0.95)} "
            f"| {_ms(m.healthz_ms)}{failures} | {_ms(m.acks_ms)} | {kept} |"
        )
    worst_rss = max(m.peak_rss_mb for m in results)
    refusals = [m for m in results if m.status not in (200, 201)]
    refused_rss = max((m.peak_rss_mb for m in refusals), default=0.0)
    refused_health = max((max(m.healthz_ms) for m in refusals if m.healthz_ms), default=0.0)
    worst_health = max((max(m.healthz_ms) for m in results if m.healthz_ms), default=0.0)
    accepted = [m for m in results if m.status in (200, 201) and m.healthz_ms]
    big = max(accepted, key=lambda m: m.size, default=None)
    lines += [
        "",
        f"Worst over all files: server RSS {worst_rss:.0f} MB "
        f"({'within' if worst_rss < RSS_TARGET_MB else 'over'} the {RSS_TARGET_MB:.0f} MB "
        f"target), `/healthz` {worst_health:.0f} ms "
        f"({'within' if worst_health < HEALTHZ_TARGET_MS else 'over'} the "
        f"{HEALTHZ_TARGET_MS:.0f} ms target). The last row is the cost of reading in a child "
        f"process for an ordinary small upload. Over the refusals alone: server RSS "
        f"{refused_rss:.0f} MB, `/healthz` {refused_health:.0f} ms. An accepted upload is "
        "read in one child process and stored and compared with the active version in another, "
        "on a connection of its own: the server waits for it only where it needs the SQLite "
        "write lock the store holds, to log a question after acknowledging it (the spool "
        "keeps the acknowledgement from waiting)"
        + (
            f"; here the largest accepted file's `/healthz` max was {_ms(big.healthz_ms)}."
            if big is not None
            else "."
        ),
    ]
    return "\n".join(lines)


def section(results: list[Measured]) -> str:
    return f"{START}\n{markdown(results)}\n{END}"


def write_section(path: Path, text: str) -> None:
    """Replace this bench's part of the page, leaving the rest as the full bench wrote it."""
    page = path.read_text(encoding="utf-8") if path.exists() else ""
    if START in page and END in page:
        head, rest = page.split(START, 1)
        page = head + text + rest.split(END, 1)[1]
    else:
        page = page.rstrip("\n") + "\n\n## Hostile uploads\n\n" + text + "\n"
    path.write_text(page, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench uploads", description=__doc__)
    parser.add_argument("--out", type=Path, help="replace the uploads section of this page")
    parser.add_argument(
        "--only", default="", help="only the files whose label has one of these (comma-separated)"
    )
    parser.add_argument("--keep-log", type=Path, help="copy the server's output here")
    args = parser.parse_args(argv)
    text = section(asyncio.run(run_all(args.only, args.keep_log)))
    print(text)
    if args.out:
        write_section(args.out, text)
