"""A small client for OpenAI-compatible Chat Completions: OpenAI, Azure OpenAI's v1 endpoint,
Ollama, vLLM, LM Studio, llama.cpp's server.

It never raises anything but `LLMError`, whose reason is meant for the question log, and it
keeps to a time budget: per-request timeouts, a bounded retry with backoff on 429 (honouring
Retry-After, capped) and 5xx, and no wait that would end past the budget.

Asked with `on_text`, it streams (`stream: true`, server-sent events): the reply's text so far
is handed over as it grows, scrubbed of every secret and with the last characters held back
until the next piece shows they begin no secret. A retry happens only before the first piece
was handed over; a stream that breaks after it is an LLMError like any other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NoReturn

from bot.config import Settings
from bot.redaction import Redactor, url_credentials, url_secrets, without_credentials

if TYPE_CHECKING:
    import httpx

# httpx (with the rich and pygments its command line pulls in) is imported where a request is
# made, so a bot with no LLM configured never loads it.

log = logging.getLogger(__name__)

#: Longest Retry-After the client waits for, whatever the server asks.
MAX_RETRY_AFTER = 10.0
#: Characters of a streamed reply taken at most: the reply the bot asks for is a short JSON
#: object (a summary of at most 700 characters), so a stream past this is not that reply.
MAX_STREAMED_CHARS = 32_000
#: Longest line of a server-sent event stream read: one chunk is a small JSON object.
MAX_EVENT_LINE = 64 * 1024

#: Called with a streamed reply's text so far (scrubbed), each time it grows.
OnText = Callable[[str], None]


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
        import httpx

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
        # Pooled connections belong to the event loop that opened them: one client per loop
        # that asks (the server's, and the one answering Slack's questions), forgotten with
        # its loop (a client from a loop that has ended cannot be used or closed in another).
        self._owned: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        # Servers that reject response_format or temperature get plain requests from then on.
        self._plain = False

    def _client(self) -> httpx.AsyncClient:
        import httpx

        if self._http is not None:
            return self._http
        loop = asyncio.get_running_loop()
        owned = self._owned.get(loop)
        if owned is None:
            owned = self._owned[loop] = httpx.AsyncClient(headers={"User-Agent": "policybot"})
        return owned

    async def aclose(self) -> None:
        """Close the connections the running loop opened (each loop that asked closes its own)."""
        owned = self._owned.pop(asyncio.get_running_loop(), None)
        if owned is not None:
            await owned.aclose()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        # Userinfo in the URL is sent as Basic credentials, which replace a Bearer header (as
        # httpx did when the userinfo was left in the URL).
        if self.config.api_key and self.config.basic_auth is None:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def _body(
        self, messages: list[dict[str, str]], json_reply: bool, stream: bool = False
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.config.model, "messages": messages}
        if stream:
            body["stream"] = True
        if not self._plain:
            body["temperature"] = 0
            if json_reply:
                body["response_format"] = {"type": "json_object"}
            if stream:
                # The token counts come in a last chunk only when asked for.
                body["stream_options"] = {"include_usage": True}
        return body

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        budget: float,
        json_reply: bool = True,
        on_text: OnText | None = None,
    ) -> Completion:
        """One reply's text, within `budget` seconds in all, or LLMError. With `on_text`, the
        reply is streamed and `on_text` told its text so far as it grows."""
        started = time.monotonic()
        deadline = started + budget
        attempts = retried = 0
        shown = _Shown(on_text, self.redactor) if on_text is not None else None

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
                timeout = min(self.config.timeout, remaining)
                if shown is None:
                    reply = await self._attempt(messages, json_reply, timeout)
                else:
                    reply = await self._attempt_streamed(messages, json_reply, timeout, shown)
                return Completion(_content(reply), usage(reply))
            except _Downgrade:
                continue
            except _Fail as failure:
                raise LLMError(failure.reason, usage(failure.reply)) from None
            except _Retry as retry:
                if shown is not None and shown.text:
                    # The asker has seen part of this reply: another would not continue it.
                    raise LLMError(f"{retry.reason} mid-stream", usage()) from None
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
        import httpx

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
        return self._read(response)

    def _refused(self, response: httpx.Response) -> NoReturn:
        """Raises what a response other than 200 means (retry, downgrade, fail)."""
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
        raise _Fail(f"HTTP {status} from the LLM: {_snippet(text)}")

    def _read(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            self._refused(response)
        text = self.redactor.scrub(response.text)
        try:
            reply = response.json()
        except ValueError:
            raise _Fail(f"the LLM's response is not JSON: {_snippet(text)}") from None
        if not isinstance(reply, dict):
            raise _Fail("the LLM's response is not a JSON object")
        # Parsed, then scrubbed again: JSON may spell a key with \u escapes the text did not.
        return self.redactor.scrub_row(reply)

    async def _attempt_streamed(
        self, messages: list[dict[str, str]], json_reply: bool, timeout: float, shown: _Shown
    ) -> dict[str, Any]:
        """One streamed request, read into the shape of a whole completion."""
        import httpx

        body = self._body(messages, json_reply, stream=True)
        headers = {**self._headers(), "Accept": "text/event-stream"}
        stream = _Stream()
        try:
            # As for one reply: the whole stream within the timeout, however it trickles.
            async with asyncio.timeout(timeout):
                request = self._client().build_request(
                    "POST",
                    self.config.endpoint,
                    json=body,
                    headers=headers,
                    timeout=httpx.Timeout(timeout),
                )
                response = await self._client().send(
                    request, auth=self.config.basic_auth or httpx.USE_CLIENT_DEFAULT, stream=True
                )
                try:
                    if response.status_code != 200:
                        await response.aread()
                        self._refused(response)
                    if "text/event-stream" not in response.headers.get("content-type", ""):
                        # A server that ignores `stream` answers in one piece: still an answer.
                        await response.aread()
                        return self._read(response)
                    async for line in _lines(response):
                        if stream.take(line, self.redactor):
                            break
                        shown.offer(stream.content)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise _Fail(
                f"the LLM did not reply within {timeout:.2g}s"
                + (f" ({len(stream.content)} characters streamed)" if stream.content else "")
            ) from None
        except httpx.ConnectError as error:
            reason = f"cannot connect to {self.config.address}: {self.redactor.scrub(str(error))}"
            raise _Retry(reason) from None
        except httpx.HTTPError as error:
            detail = self.redactor.scrub(str(error))
            if stream.content:
                raise _Fail(
                    f"the LLM's stream broke after {len(stream.content)} characters: "
                    f"{type(error).__name__}: {detail}"
                ) from None
            # Nothing arrived yet: the same as a refused connection, worth another try.
            raise _Retry(f"the LLM's stream broke before any text: {detail}") from None
        if not stream.done:
            if stream.content:
                raise _Fail(
                    f"the LLM's stream ended unfinished after {len(stream.content)} characters"
                )
            raise _Retry("the LLM's stream ended before any text")
        return stream.reply(self.redactor)


class _Shown:
    """What `on_text` was last told: the scrubbed text so far, less a tail as long as the
    longest secret, which the next piece may complete."""

    def __init__(self, on_text: OnText, redactor: Redactor) -> None:
        self.on_text = on_text
        self.redactor = redactor
        self.text = ""

    def offer(self, content: str) -> None:
        scrubbed = self.redactor.scrub(content)
        safe = scrubbed[: max(len(scrubbed) - self.redactor.longest, 0)]
        if len(safe) > len(self.text) and safe.startswith(self.text):
            self.text = safe
            self.on_text(safe)


class _Stream:
    """A chat completion read from its server-sent events."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.data: list[str] = []
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.done = False

    @property
    def content(self) -> str:
        if len(self.parts) > 1:
            self.parts = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def take(self, line: str, redactor: Redactor) -> bool:
        """One line of the event stream; True once the stream has ended."""
        if line:
            field, _, value = line.partition(":")
            if field == "data":
                self.data.append(value.removeprefix(" "))
            # Comments (": keep-alive"), `event:`, `id:` and `retry:` carry no text.
            return False
        if not self.data:
            return False
        data, self.data = "\n".join(self.data), []
        if data.strip() == "[DONE]":
            self.done = True
            return True
        try:
            event = json.loads(data)
        except ValueError:
            snippet = _snippet(redactor.scrub(data))
            raise _Fail(f"the LLM streamed an event that is not JSON: {snippet}") from None
        if not isinstance(event, dict):
            raise _Fail("the LLM streamed an event that is not a JSON object")
        failure = event.get("error")
        if failure is not None:
            message = failure.get("message") if isinstance(failure, dict) else failure
            raise _Fail(f"the LLM failed mid-stream: {_snippet(redactor.scrub(str(message)))}")
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        choices = event.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return False
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict):
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal.strip():
                raise _Fail(f"the LLM refused: {redactor.scrub(refusal.strip())[:200]}")
            piece = delta.get("content")
            if isinstance(piece, str) and piece:
                self.length += len(piece)
                if self.length > MAX_STREAMED_CHARS:
                    raise _Fail(f"the LLM streamed more than {MAX_STREAMED_CHARS:,} characters")
                self.parts.append(piece)
        if isinstance(choice.get("finish_reason"), str):
            self.finish_reason = choice["finish_reason"]
        return False

    def reply(self, redactor: Redactor) -> dict[str, Any]:
        """The stream as the whole completion `_content` reads, scrubbed."""
        reply: dict[str, Any] = {
            "choices": [{"message": {"role": "assistant", "content": self.content}}],
        }
        if self.usage is not None:
            reply["usage"] = self.usage
        return redactor.scrub_row(reply)


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    """The response's lines, each at most MAX_EVENT_LINE characters (or _Fail)."""
    buffer = ""
    async for text in response.aiter_text():
        buffer += text
        while True:
            end = min((i for i in (buffer.find("\n"), buffer.find("\r")) if i != -1), default=-1)
            if end == -1:
                break
            line, rest = buffer[:end], buffer[end + 1 :]
            if buffer[end] == "\r" and rest.startswith("\n"):
                rest = rest[1:]
            buffer = rest
            yield line
        if len(buffer) > MAX_EVENT_LINE:
            raise _Fail(f"the LLM streamed a line longer than {MAX_EVENT_LINE:,} characters")
    if buffer:
        yield buffer
    yield ""


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
