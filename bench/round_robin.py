"""A round-robin HTTP proxy on loopback, standing in for a platform's router in front of
several `serve` replicas: each request goes to the next replica in turn, body and headers
as they came (Slack's signature is over the raw body), the replica's status and body back.

Two of them: nginx (`upstream` round robin, keep-alive connections to the replicas, no retry
on another replica), a process of its own that costs the bench's Python process nothing, when
the machine has nginx (Debian: `apt-get install nginx-light`); otherwise the aiohttp proxy
below, in the bench's own process. `proxy.name` says which ran.

    async with round_robin(["http://127.0.0.1:8001", "http://127.0.0.1:8002"]) as (port, proxy):
        ...
        proxy.sent()  # requests each replica received
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Protocol

import aiohttp
from aiohttp import web

from bench.slack_web_api import on_loopback
from bench.speed import stop_process

#: Headers a proxy must not pass along as they came (hop by hop, or its own to set).
_HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length"}
#: The proxies `round_robin` can run: "auto" is nginx where the machine has it.
PROXIES = ("auto", "nginx", "python")


class Proxy(Protocol):
    #: Which proxy it is, as the bench's page names it.
    name: str

    def sent(self) -> list[int]:
        """Requests each backend received since the last `reset`, in backend order."""

    def reset(self) -> None: ...

    def pids(self) -> list[int]:
        """Its processes outside the bench's own (none for the in-process proxy)."""


class RoundRobin:
    """The aiohttp proxy, in the bench's process (and on its CPU)."""

    name = "aiohttp, in the bench's process"

    def __init__(self, backends: Sequence[str]) -> None:
        self.backends = list(backends)
        self._next = itertools.cycle(range(len(self.backends)))
        #: backend index -> requests sent to it
        self.counts: Counter[int] = Counter()
        self.session: aiohttp.ClientSession | None = None

    def sent(self) -> list[int]:
        return [self.counts[n] for n in range(len(self.backends))]

    def reset(self) -> None:
        self.counts.clear()

    def pids(self) -> list[int]:
        return []

    async def forward(self, request: web.Request) -> web.Response:
        assert self.session is not None
        index = next(self._next)
        self.counts[index] += 1
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            async with self.session.request(
                request.method,
                self.backends[index] + request.rel_url.path_qs,
                data=body,
                headers=headers,
            ) as response:
                payload = await response.read()
                kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
                return web.Response(status=response.status, body=payload, headers=kept)
        except aiohttp.ClientError:
            return web.Response(status=502, text="replica unreachable")


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$upstream_addr';
    access_log {folder}/access.log upstream;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    client_max_body_size 2m;
    client_body_buffer_size 64k;
    upstream replicas {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_next_upstream off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


class Nginx:
    """nginx as the round-robin proxy, a process of its own; its access log names the
    replica each request went to."""

    name = "nginx (upstream round robin, a process of its own)"

    def __init__(self, binary: str, backends: Sequence[str], folder: Path, port: int) -> None:
        self.backends = [b.removeprefix("http://") for b in backends]
        self.folder = folder
        self.port = port
        servers = "\n".join(f"        server {b};" for b in self.backends)
        (folder / "nginx.conf").write_text(
            NGINX_CONF.format(folder=folder, servers=servers, port=port), encoding="ascii"
        )
        self.process = subprocess.Popen(
            [binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._offset = 0

    @property
    def _log(self) -> Path:
        return self.folder / "access.log"

    def sent(self) -> list[int]:
        with self._log.open("rb") as log:
            log.seek(self._offset)
            lines = log.read().decode("ascii", "replace").split()
        counts = Counter(lines)
        return [counts[b] for b in self.backends]

    def reset(self) -> None:
        self._offset = self._log.stat().st_size if self._log.exists() else 0

    def pids(self) -> list[int]:
        """The master and its workers."""
        found = [self.process.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    found.append(int(stat.parent.name))
        return found

    def stop(self) -> None:
        stop_process(self.process)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _listening(port: int, process: subprocess.Popen[bytes], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("nginx exited at start")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("nginx did not listen")


@contextlib.asynccontextmanager
async def round_robin(
    backends: Sequence[str], which: str = "auto"
) -> AsyncIterator[tuple[int, Proxy]]:
    """(the proxy's port, the proxy) while it runs on 127.0.0.1: nginx when `which` is
    "nginx", or "auto" and the machine has it; else the aiohttp proxy."""
    binary = nginx_binary() if which in ("auto", "nginx") else None
    if which == "nginx" and binary is None:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
    if binary is not None:
        with tempfile.TemporaryDirectory(prefix="policybot-nginx-") as name:
            folder = Path(name)
            folder.chmod(0o755)
            port = _free_port()
            nginx = Nginx(binary, backends, folder, port)
            try:
                await _listening(port, nginx.process)
                yield port, nginx
            finally:
                nginx.stop()
        return
    proxy = RoundRobin(backends)
    app = web.Application(client_max_size=2**21)
    app.router.add_route("*", "/{tail:.*}", proxy.forward)
    connector = aiohttp.TCPConnector(limit=256)
    async with (
        aiohttp.ClientSession(connector=connector) as proxy.session,
        on_loopback(app) as port,
    ):
        yield port, proxy
