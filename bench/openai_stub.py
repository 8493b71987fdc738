"""An OpenAI-compatible Chat Completions server on 127.0.0.1 that tests and the bench script.

Each request to POST /v1/chat/completions takes the next scripted reply (a `Reply`, or a
function of the recorded request that returns one); every request is recorded. It runs in its
own thread, so a test can use it from async code and from the CLI (which runs its own loop).

A `Reply` with `events` is streamed as OpenAI streams (`stream: true`): server-sent events in
HTTP chunks, one `data: {...}` chunk per piece with `choices[0].delta.content`, `delay`
seconds apart, then `data: [DONE]`; `broken_after` cuts the connection after that many pieces,
mid-stream, as a server that dies or a proxy that drops it would.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]
    #: The client's end of the connection it came on ("host:port").
    peer: str = ""

    @property
    def messages(self) -> list[dict[str, str]]:
        return list(self.body.get("messages", []))

    @property
    def data(self) -> dict[str, Any]:
        """The user message parsed as the JSON the bot sends (question and clauses)."""
        user = [m for m in self.messages if m.get("role") == "user"]
        return dict(json.loads(user[-1]["content"]))

    @property
    def clauses(self) -> dict[str, str]:
        """Clause id -> text, as the model was given them."""
        return {c["id"]: c["text"] for c in self.data["clauses"]}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer: wait until the stub stops
    #: Server-sent events to stream, each one `data:` payload (a JSON text or "[DONE]").
    events: tuple[str, ...] = ()
    #: Seconds between two streamed events.
    delay: float = 0.0
    #: Close the connection after this many events, with no end of the stream.
    broken_after: int | None = None


Script = Reply | Callable[[Recorded], Reply]


def completion(
    content: str | None, *, prompt_tokens: int = 321, completion_tokens: int = 45
) -> Reply:
    """A well-formed chat completion whose assistant message is `content`."""
    body = {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "model": "stub-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return Reply(body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def answer(verdict: str, text: str, clause_ids: list[Any], **usage: int) -> Reply:
    """A completion whose content is the structured reply the bot asks for."""
    content = json.dumps({"verdict": verdict, "answer": text, "clause_ids": clause_ids})
    return completion(content, **usage)


def error(status: int, message: str = "stub error", **headers: str) -> Reply:
    body = json.dumps({"error": {"message": message, "type": "stub"}}).encode()
    return Reply(status=status, body=body, headers={"Content-Type": "application/json", **headers})


HANG = Reply(hang=True)


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
    """One streamed chat.completion.chunk's JSON."""
    return json.dumps(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "model": "stub-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
    )


def pieces(text: str, size: int) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)] or [""]


def streamed(
    content: str,
    *,
    size: int = 12,
    delay: float = 0.0,
    broken_after: int | None = None,
    prompt_tokens: int = 321,
    completion_tokens: int = 45,
) -> Reply:
    """`content` streamed in pieces of `size` characters, `delay` seconds apart; the usage in
    a last chunk without choices, as OpenAI sends it with `stream_options.include_usage`."""
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces(content, size)]
    events.append(chunk({}, "stop"))
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    events.append(json.dumps({"id": "chatcmpl-stub", "choices": [], "usage": usage}))
    events.append("[DONE]")
    return Reply(
        headers={"Content-Type": "text/event-stream"},
        events=tuple(events),
        delay=delay,
        broken_after=broken_after,
    )


def streamed_answer(verdict: str, text: str, clause_ids: list[Any], **options: Any) -> Reply:
    """The structured reply the bot asks for, streamed (see `streamed` for the options)."""
    content = json.dumps({"verdict": verdict, "answer": text, "clause_ids": clause_ids})
    return streamed(content, **options)


class OpenAIStub:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: deque[Script] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A short poll interval keeps shutdown (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *replies: Script) -> None:
        with self._lock:
            self._script.extend(replies)

    def forget(self) -> None:
        """Drop the scripted replies no request has taken."""
        with self._lock:
            self._script.clear()

    @property
    def unused(self) -> int:
        """Scripted replies no request has taken yet."""
        with self._lock:
            return len(self._script)

    def start(self) -> OpenAIStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            step = self._script.popleft() if self._script else None
        if step is None:
            return error(500, "the test scripted no reply for this request")
        return step(request) if callable(step) else step

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsed": raw.decode("utf-8", "replace")}
                recorded = Recorded(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    peer=f"{self.client_address[0]}:{self.client_address[1]}",
                )
                reply = (
                    stub._next(recorded)
                    if self.path == "/v1/chat/completions"
                    else error(404, f"no route {self.path}")
                )
                if reply.hang:
                    stub._release.wait(timeout=30)
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.events:
                    self._stream(reply)
                    return
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def _stream(self, reply: Reply) -> None:
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                for sent, event in enumerate(reply.events):
                    if reply.broken_after is not None and sent >= reply.broken_after:
                        # Cut with no last chunk: the client sees the body end unfinished.
                        self.close_connection = True
                        return
                    if sent and reply.delay and stub._release.wait(timeout=reply.delay):
                        self.close_connection = True
                        return
                    data = f"data: {event}\n\n".encode()
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                    except OSError:  # the client went away (its timeout, its budget)
                        self.close_connection = True
                        return
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler
