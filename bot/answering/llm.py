"""A small client for OpenAI-compatible Chat Completions: OpenAI, Azure OpenAI's v1 endpoint,
Ollama, vLLM, LM Studio, llama.cpp's server.

It never raises anything but `LLMError`, whose reason is meant for the question log, and it
keeps to a time budget: per-request timeouts, a bounded retry with backoff on 429 (honouring
Retry-After, capped) and 5xx, and no wait that would end past the budget.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from bot.config import Settings
from bot.redaction import Redactor, url_credentials, url_secrets, without_credentials

log = logging.getLogger(__name__)

#: Longest Retry-After the client waits for, whatever the server asks.
MAX_RETRY_AFTER = 10.0


@dataclass(frozen=True)
class LLMConfig:
    #: May carry userinfo (`https://user:pass@host/v1`): sent as Basic credentials, never shown.
    base_url: str = field(repr=False)
    model: str
    api_key: str = field(default="", repr=False)
    #: Seconds one request may take.
    timeout: float = 8.0
    #: Further attempts after a 429, a 5xx or a refused connection.
    retries: int = 2
    #: Wait before the first retry; doubled (with jitter) for each further one.
    backoff: float = 0.5
    max_retry_after: float = MAX_RETRY_AFTER

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMConfig:
        return cls(
            base_url=settings.openai_base_url.strip(),
            model=settings.llm_model.strip(),
            api_key=settings.openai_api_key.strip(),
            timeout=settings.llm_timeout,
            retries=settings.llm_retries,
        )

    @property
    def address(self) -> str:
        """The base URL without its userinfo: what messages may name."""
        return without_credentials(self.base_url)

    @property
    def endpoint(self) -> str:
        # Without userinfo: httpx logs every request's URL.
        return self.address.rstrip("/") + "/chat/completions"

    @property
    def basic_auth(self) -> httpx.BasicAuth | None:
        user, password = url_credentials(self.base_url)
        return httpx.BasicAuth(user, password) if user or password else None

    def redactor(self) -> Redactor:
        """Scrubs the key and the URL's credentials from what the server sends back."""
        return Redactor([self.api_key, *url_secrets(self.base_url)])


@dataclass(frozen=True)
class LLMUsage:
    """What one LLM exchange cost, successful or not; it goes into the question log."""

    model: str
    latency_ms: int
    attempts: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Completion:
    content: str
    usage: LLMUsage


class LLMError(Exception):
    """The LLM gave no usable reply; `reason` says why, in words for the log."""

    def __init__(self, reason: str, usage: LLMUsage) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage = usage


class _Retry(Exception):
    """An attempt failed in a way worth another try (429, 5xx, refused connection)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class _Fail(Exception):
    """An attempt failed for good; `reply` is the response body when there was one."""

    def __init__(self, reason: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


class _Downgrade(Exception):
    """The server rejected an optional parameter; the same request goes again without it."""


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait (retry-after-ms, or Retry-After as seconds or a date)."""
    raw_ms = headers.get("retry-after-ms", "").strip()
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after", "").strip()
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _snippet(body: str) -> str:
    text = " ".join(body.split())
    return text[:200] + ("…" if len(text) > 200 else "")


class ChatClient:
    """Chat Completions over an `httpx.AsyncClient`.

    Hand in `http` to share a client or to test through a transport; the caller then owns
    it. Without one the client makes its own and `aclose` closes it.
    """

    def __init__(self, config: LLMConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        #: A server may echo the credentials (a 401 quoting the key, a proxy the headers):
        #: everything it sends is scrubbed before it reaches a reason, a log line or a reply.
        self.redactor = config.redactor()
        self._http = http
        self._owned: httpx.AsyncClient | None = None
        self._owned_loop: asyncio.AbstractEventLoop | None = None
        # Servers that reject response_format or temperature get plain requests from then on.
        self._plain = False

    def _client(self) -> httpx.AsyncClient:
        if self._http is not None:
            return self._http
        loop = asyncio.get_running_loop()
        if self._owned is None or self._owned_loop is not loop:
            # Pooled connections belong to the event loop that opened them; a client from a
            # loop that has ended cannot be used (or closed) in another.
            self._owned = httpx.AsyncClient(headers={"User-Agent": "policybot"})
            self._owned_loop = loop
        return self._owned

    async def aclose(self) -> None:
        owned, loop = self._owned, self._owned_loop
        self._owned = self._owned_loop = None
        if owned is not None and loop is asyncio.get_running_loop():
            await owned.aclose()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        # Userinfo in the URL is sent as Basic credentials, which replace a Bearer header (as
        # httpx did when the userinfo was left in the URL).
        if self.config.api_key and self.config.basic_auth is None:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def _body(self, messages: list[dict[str, str]], json_reply: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.config.model, "messages": messages}
        if not self._plain:
            body["temperature"] = 0
            if json_reply:
                body["response_format"] = {"type": "json_object"}
        return body

    async def complete(
        self, messages: list[dict[str, str]], *, budget: float, json_reply: bool = True
    ) -> Completion:
        """One reply's text, within `budget` seconds in all, or LLMError."""
        started = time.monotonic()
        deadline = started + budget
        attempts = retried = 0

        def usage(reply: dict[str, Any] | None = None) -> LLMUsage:
            counts = reply.get("usage") if isinstance(reply, dict) else None
            counts = counts if isinstance(counts, dict) else {}
            return LLMUsage(
                model=self.config.model,
                latency_ms=round((time.monotonic() - started) * 1000),
                attempts=attempts,
                prompt_tokens=_count(counts.get("prompt_tokens")),
                completion_tokens=_count(counts.get("completion_tokens")),
            )

        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LLMError(f"the LLM time budget of {budget:g}s ran out", usage())
            attempts += 1
            try:
                reply = await self._attempt(
                    messages, json_reply, min(self.config.timeout, remaining)
                )
                return Completion(_content(reply), usage(reply))
            except _Downgrade:
                continue
            except _Fail as failure:
                raise LLMError(failure.reason, usage(failure.reply)) from None
            except _Retry as retry:
                if retried >= self.config.retries:
                    raise LLMError(f"{retry.reason} (after {attempts} attempts)", usage()) from None
                wait = retry.wait
                if wait is None:
                    wait = self.config.backoff * 2**retried * (0.5 + random.random() / 2)
                wait = min(wait, self.config.max_retry_after)
                if time.monotonic() + wait >= deadline:
                    raise LLMError(
                        f"{retry.reason}; waiting {wait:g}s more would pass the time budget",
                        usage(),
                    ) from None
                retried += 1
                log.info("LLM attempt %d: %s; retrying in %.2fs", attempts, retry.reason, wait)
                await asyncio.sleep(wait)

    async def _attempt(
        self, messages: list[dict[str, str]], json_reply: bool, timeout: float
    ) -> dict[str, Any]:
        body = self._body(messages, json_reply)
        try:
            # httpx's timeout bounds each phase; this bounds the whole request, so a server
            # that trickles bytes cannot hold the answer past the budget.
            async with asyncio.timeout(timeout):
                response = await self._client().post(
                    self.config.endpoint,
                    json=body,
                    headers=self._headers(),
                    auth=self.config.basic_auth or httpx.USE_CLIENT_DEFAULT,
                    timeout=httpx.Timeout(timeout),
                )
        except (TimeoutError, httpx.TimeoutException):
            raise _Fail(f"the LLM did not reply within {timeout:.2g}s") from None
        except httpx.ConnectError as error:
            reason = f"cannot connect to {self.config.address}: {self.redactor.scrub(str(error))}"
            raise _Retry(reason) from None
        except httpx.HTTPError as error:
            detail = self.redactor.scrub(str(error))
            raise _Fail(f"request to the LLM failed: {type(error).__name__}: {detail}") from None
        status = response.status_code
        # Scrubbed whole, before any cut: a key cut in two at the snippet's end would leak half.
        text = self.redactor.scrub(response.text)
        if status == 429:
            raise _Retry("the LLM is rate limited (HTTP 429)", retry_after(response.headers))
        if status >= 500:
            raise _Retry(f"the LLM failed with HTTP {status}", retry_after(response.headers))
        if status in (400, 422) and not self._plain:
            # Not every server knows response_format or temperature (reasoning models refuse
            # a temperature, older local servers a response_format): ask once more without.
            log.info(
                "LLM rejected the request (HTTP %d: %s); retrying without response_format",
                status,
                _snippet(text),
            )
            self._plain = True
            raise _Downgrade()
        if status != 200:
            raise _Fail(f"HTTP {status} from the LLM: {_snippet(text)}")
        try:
            reply = response.json()
        except ValueError:
            raise _Fail(f"the LLM's response is not JSON: {_snippet(text)}") from None
        if not isinstance(reply, dict):
            raise _Fail("the LLM's response is not a JSON object")
        # Parsed, then scrubbed again: JSON may spell a key with \u escapes the text did not.
        return self.redactor.scrub_row(reply)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _content(reply: dict[str, Any]) -> str:
    """The assistant message's text, or _Fail saying what the response lacks."""
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _Fail("the LLM's response has no choices", reply)
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise _Fail("the LLM's response has no message", reply)
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal.strip():
        raise _Fail(f"the LLM refused: {refusal.strip()[:200]}", reply)
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        raise _Fail("the LLM's reply is empty", reply)
    return content
