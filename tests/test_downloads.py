"""Downloading an attached file: the size cap while streaming, HTTP errors and the timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.downloads import DownloadError, TooLarge, download


def transport(
    body: bytes, *, status: int = 200, declare_length: bool = True
) -> httpx.MockTransport:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    def handler(request: httpx.Request) -> httpx.Response:
        if declare_length:
            return httpx.Response(status, content=body)
        # A streamed body goes out chunked: no Content-Length to check up front.
        return httpx.Response(status, content=chunks())

    return httpx.MockTransport(handler)


async def test_a_file_within_the_limit_is_returned_whole() -> None:
    data = b"# Policy\n\n" + b"x" * 1000
    assert await download("https://files.test/p.md", 2000, transport=transport(data)) == data
    assert (
        await download(
            "https://files.test/p.md", len(data), transport=transport(data, declare_length=False)
        )
        == data
    )


@pytest.mark.parametrize("declare_length", [True, False])
async def test_a_file_over_the_limit_is_refused(declare_length: bool) -> None:
    with pytest.raises(TooLarge):
        await download(
            "https://files.test/p.md",
            500,
            transport=transport(b"x" * 501, declare_length=declare_length),
        )


async def test_http_errors_are_reported() -> None:
    with pytest.raises(DownloadError, match="HTTP 403"):
        await download("https://files.test/p.md", 500, transport=transport(b"no", status=403))


async def test_a_server_that_never_answers_hits_the_timeout() -> None:
    never = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await never.wait()
        return httpx.Response(200)

    with pytest.raises(DownloadError, match=r"longer than 0\.05 seconds"):
        await download(
            "https://files.test/p.md", 500, timeout=0.05, transport=httpx.MockTransport(hang)
        )
