"""A file host on loopback (standing in for OneDrive/SharePoint download links) that records
every download."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from tests.fakes.loopback import serving

CHUNK = 16 * 1024


@dataclass(frozen=True)
class Hosted:
    data: bytes
    #: Sent in chunks without a Content-Length, so only the bytes read reveal the size.
    chunked: bool = False


class FileServer:
    def __init__(self) -> None:
        self.url = ""
        self.files: dict[str, Hosted] = {}
        self.downloads: list[str] = []
        self.app = web.Application()
        self.app.router.add_get("/files/{name}", self._serve)

    def add(self, name: str, data: bytes, *, chunked: bool = False) -> str:
        """Host `data`; returns its download URL."""
        self.files[name] = Hosted(data, chunked)
        return f"{self.url}/files/{name}"

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.downloads.append(name)
        hosted = self.files.get(name)
        if hosted is None:
            return web.Response(status=404, text="no such file")
        if not hosted.chunked:
            return web.Response(body=hosted.data, content_type="application/octet-stream")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        # The bot hangs up once it has read past its limit; that is expected here.
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(hosted.data), CHUNK):
                await response.write(hosted.data[start : start + CHUNK])
            await response.write_eof()
        return response


@asynccontextmanager
async def file_server() -> AsyncIterator[FileServer]:
    server = FileServer()
    async with serving(server.app) as url:
        server.url = url
        yield server
