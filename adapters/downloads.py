"""Fetching a file a chat platform hands the bot by URL (a policy an admin attached).

The size limit is enforced while streaming, so a huge or endless file costs at most the limit
plus one chunk; the timeout bounds the whole download, not just each read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

#: Seconds a whole download may take.
DOWNLOAD_TIMEOUT = 30.0
_MAX_REDIRECTS = 5


class DownloadError(RuntimeError):
    """The file could not be fetched; the message says why, for the person who sent it."""


class TooLarge(DownloadError):
    """The file is over the size limit; nothing past the limit was read."""


async def download(
    url: str,
    limit: int,
    *,
    timeout: float = DOWNLOAD_TIMEOUT,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> bytes:
    """The body at `url`, at most `limit` bytes; TooLarge past it, DownloadError otherwise."""
    import httpx  # here: a server imports httpx (and the rich it pulls in) on its first upload

    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(
                timeout=timeout,
                follow_redirects=True,
                max_redirects=_MAX_REDIRECTS,
                transport=transport,
            ) as client,
            client.stream("GET", url, headers=dict(headers or {})) as response,
        ):
            if response.status_code >= 400:
                raise DownloadError(f"the file server answered HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise TooLarge(f"the file is {int(declared):,} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the file is over {limit:,} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except TimeoutError:
        raise DownloadError(f"the download took longer than {timeout:g} seconds") from None
    except httpx.TimeoutException:
        raise DownloadError(f"the download took longer than {timeout:g} seconds") from None
    except httpx.HTTPError as error:
        raise DownloadError(f"the download failed ({type(error).__name__})") from None
