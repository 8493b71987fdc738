"""A round-robin HTTP proxy on loopback, standing in for a platform's router in front of
several `serve` replicas: each request goes to the next replica in turn, body and headers
as they came (Slack's signature is over the raw body), the replica's status and body back.

    async with round_robin(["http://127.0.0.1:8001", "http://127.0.0.1:8002"]) as port: ...
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Sequence

import aiohttp
from aiohttp import web

from bench.slack_web_api import on_loopback

#: Headers a proxy must not pass along as they came (hop by hop, or its own to set).
_HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length"}


class RoundRobin:
    def __init__(self, backends: Sequence[str]) -> None:
        self.backends = list(backends)
        self._next = itertools.cycle(range(len(self.backends)))
        #: backend index -> requests sent to it
        self.sent: Counter[int] = Counter()
        self.session: aiohttp.ClientSession | None = None

    async def forward(self, request: web.Request) -> web.Response:
        assert self.session is not None
        index = next(self._next)
        self.sent[index] += 1
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


@contextlib.asynccontextmanager
async def round_robin(backends: Sequence[str]) -> AsyncIterator[tuple[int, RoundRobin]]:
    """(the proxy's port, the proxy) while it runs on 127.0.0.1."""
    proxy = RoundRobin(backends)
    app = web.Application(client_max_size=2**21)
    app.router.add_route("*", "/{tail:.*}", proxy.forward)
    connector = aiohttp.TCPConnector(limit=256)
    async with (
        aiohttp.ClientSession(connector=connector) as proxy.session,
        on_loopback(app) as port,
    ):
        yield port, proxy
