"""A fake Slack Web API on 127.0.0.1: records every call per method and answers plausibly.

Also serves `response_url`s (`/response/<name>`), files people shared (`/files/<id>/<name>`,
as Slack's `url_private_download`: only with the bot token, else a sign-in page), the upload
URLs of files the bot uploads (`/upload/<id>`) and, for Socket Mode, the WebSocket that `apps.connections.open` points at.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import WSMsgType, web

from bench.slack_web_api import BOT_ID as BOT_ID  # who the bot is, for tests' events
from bench.slack_web_api import BOT_USER as BOT_USER
from bench.slack_web_api import answer as slack_answer
from bench.slack_web_api import on_loopback, read_call

TEAM = "T0001"
#: What each assistant.threads.* method requires besides channel_id (Slack's reference).
ASSISTANT_REQUIRED: dict[str, tuple[str, ...]] = {
    "assistant.threads.setStatus": ("thread_ts", "status"),
    "assistant.threads.setTitle": ("thread_ts", "title"),
    "assistant.threads.setSuggestedPrompts": ("prompts",),
}
STREAM_METHODS = {"chat.startStream", "chat.appendStream", "chat.stopStream"}
#: Slack's limits: markdown_text per stream call, blocks on chat.stopStream, prompts offered.
MAX_STREAM_TEXT = 12000
MAX_STOP_BLOCKS = 50
MAX_SUGGESTED_PROMPTS = 4
#: A hang guard for waits, not a speed requirement.
GUARD = 10.0


class FakeSlackApi:
    def __init__(self) -> None:
        self.calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.overrides: dict[str, dict[str, Any]] = {}
        self.group_members: list[str] = []
        self.port = 0
        self._changed = asyncio.Condition()
        self._ts = (f"1700000000.{n:06d}" for n in itertools.count(1))
        self._sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict[str, Any]] = []
        self.files: dict[str, tuple[bytes, dict[str, Any]]] = {}
        #: Files the bot uploaded (files.getUploadURLExternal, then the upload URL): their
        #: bytes, and what it asked for them; shared once files.completeUploadExternal names
        #: them (`shared`: channel, thread, title per file id).
        self.uploads: dict[str, dict[str, Any]] = {}
        #: The bot token the file host accepts.
        self.token = "xoxb-test"
        #: method -> (HTTP status, headers) answered, in order, before answering normally:
        #: rate limits (429 + Retry-After) and server errors, to see the bot retry.
        self.failures: dict[str, list[tuple[int, dict[str, str]]]] = defaultdict(list)
        #: The client ports Web API calls came from: one per connection the bot opened.
        self.connections: set[int] = set()
        #: Called with each Web API call before it is taken; True: the call is not taken (not
        #: recorded, answered 503), as when the caller died before Slack got it (a test kills
        #: the caller from here).
        self.intercept: Callable[[str, dict[str, Any]], bool] | None = None
        #: method -> seconds each call of it takes before it is answered: a slow Slack, so
        #: that several senders are mid-delivery at once.
        self.delays: dict[str, float] = {}
        #: Whether the workspace has the agent view (a test turns it on): without it the
        #: assistant.threads.* methods answer `not_allowed`, as Slack does for an app not set
        #: up as an agent, and the bot answers as it always has.
        self.agent_view = False
        #: Whether the chat.*Stream methods exist here; without them, `unknown_method`.
        self.streaming = True
        #: Streamed messages by ts: channel, thread, the markdown so far, the blocks it was
        #: stopped with, and whether it was.
        self.streams: dict[str, dict[str, Any]] = {}

    # -- addresses ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/response/{name}"

    def add_file(self, name: str, data: bytes, *, size: int | None = None) -> dict[str, Any]:
        """Host a file as if someone shared it; returns Slack's file object for events.
        `size` is what Slack claims (by default the real size)."""
        file_id = f"F{len(self.files) + 1:04d}"
        info = {
            "id": file_id,
            "name": name,
            "title": name,
            "filetype": name.rsplit(".", 1)[-1],
            "mode": "hosted",
            "size": len(data) if size is None else size,
            "url_private": f"http://127.0.0.1:{self.port}/files/{file_id}/{name}",
            "url_private_download": f"http://127.0.0.1:{self.port}/files/{file_id}/download/{name}",
        }
        self.files[file_id] = (data, info)
        return info

    @property
    def downloads(self) -> list[dict[str, Any]]:
        return self["files:download"]

    # -- what was called ------------------------------------------------------------------------
    def __getitem__(self, method: str) -> list[dict[str, Any]]:
        return self.calls.get(method, [])

    @property
    def total_calls(self) -> int:
        return sum(len(c) for c in self.calls.values())

    async def wait_for(self, method: str, count: int = 1) -> list[dict[str, Any]]:
        """Until `method` has been called `count` times; its calls."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self[method]) >= count), GUARD
            )
        return self[method]

    async def _record(self, method: str, payload: dict[str, Any]) -> None:
        async with self._changed:
            self.calls[method].append(payload)
            self._changed.notify_all()

    # -- the API --------------------------------------------------------------------------------
    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.connections.add(peer[1])
        payload = await read_call(request)
        if self.intercept is not None and self.intercept(method, payload):
            return web.json_response({"ok": False, "error": "not_taken"}, status=503)
        await self._record(method, payload)
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
        if self.failures[method]:
            status, headers = self.failures[method].pop(0)
            error = "ratelimited" if status == 429 else "internal_error"
            return web.json_response({"ok": False, "error": error}, status=status, headers=headers)
        if method in self.overrides:
            return web.json_response(self.overrides[method])
        return web.json_response(self._answer(method, payload))

    def _answer(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if method.startswith("assistant.threads."):
            return self._assistant(method, payload)
        if method in STREAM_METHODS:
            return self._stream(method, payload)
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": next(self._ts)}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(payload.get("users", "")).lstrip("U")}}
        if method == "usergroups.users.list":
            return {"ok": True, "users": self.group_members}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V0001", **(payload.get("view") or {})}}
        if method == "files.info":
            hosted = self.files.get(str(payload.get("file")))
            return (
                {"ok": True, "file": hosted[1]}
                if hosted
                else {"ok": False, "error": "file_not_found"}
            )
        if method == "files.getUploadURLExternal":
            return self._upload_url(payload)
        if method == "files.completeUploadExternal":
            return self._complete_upload(payload)
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        return slack_answer(method, payload, self._ts, TEAM)

    def _assistant(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.agent_view:
            return {"ok": False, "error": "not_allowed"}
        missing = [name for name in ASSISTANT_REQUIRED.get(method, ()) if name not in payload]
        if missing or not payload.get("channel_id"):
            return invalid_arguments(missing or ["channel_id"])
        if method == "assistant.threads.setSuggestedPrompts":
            prompts = payload["prompts"]
            if not isinstance(prompts, list) or not 1 <= len(prompts) <= MAX_SUGGESTED_PROMPTS:
                return invalid_arguments(["prompts"])
            if not all(
                isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts
            ):
                return invalid_arguments(["prompts"])
        return {"ok": True}

    def _stream(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.streaming:
            return {"ok": False, "error": "unknown_method"}
        needed = ("channel", "thread_ts") if method == "chat.startStream" else ("channel", "ts")
        missing = [name for name in needed if not payload.get(name)]
        if missing:
            return invalid_arguments(missing)
        chunks = payload.get("chunks") or []
        if not isinstance(chunks, list) or not all(isinstance(c, dict) for c in chunks):
            return {"ok": False, "error": "invalid_chunks"}
        pieces = [str(payload.get("markdown_text") or "")]
        pieces += [str(c.get("text") or "") for c in chunks if c.get("type") == "markdown_text"]
        text = "".join(pieces)
        if any(len(piece) > MAX_STREAM_TEXT for piece in pieces):
            return {"ok": False, "error": "msg_too_long"}
        if method == "chat.startStream":
            ts = next(self._ts)
            self.streams[ts] = {
                "channel": payload["channel"],
                "thread_ts": payload["thread_ts"],
                "text": text,
                "blocks": [],
                "stopped": False,
            }
            return {"ok": True, "channel": payload["channel"], "ts": ts}
        stream = self.streams.get(str(payload["ts"]))
        if stream is None or stream["stopped"] or stream["channel"] != payload["channel"]:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        if method == "chat.appendStream" and not text and not chunks:
            return invalid_arguments(["markdown_text"])
        stream["text"] += text
        if method == "chat.stopStream":
            blocks = payload.get("blocks") or []
            if len(blocks) > MAX_STOP_BLOCKS:
                return {"ok": False, "error": "invalid_blocks"}
            stream["blocks"] = blocks
            stream["stopped"] = True
        return {"ok": True, "channel": payload["channel"], "ts": payload["ts"]}

    def _upload_url(self, payload: dict[str, Any]) -> dict[str, Any]:
        missing = [name for name in ("filename", "length") if not payload.get(name)]
        if missing:
            return invalid_arguments(missing)
        file_id = f"FU{len(self.uploads) + 1:04d}"
        self.uploads[file_id] = {
            "filename": payload["filename"],
            "length": int(payload["length"]),
            "alt_txt": payload.get("alt_txt", ""),
            "data": None,
            "shared": None,
        }
        return {
            "ok": True,
            "file_id": file_id,
            "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
        }

    def _complete_upload(self, payload: dict[str, Any]) -> dict[str, Any]:
        files = payload.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        if not isinstance(files, list) or not files:
            return invalid_arguments(["files"])
        shared = []
        for entry in files:
            upload = self.uploads.get(str(entry.get("id")))
            # Slack completes only what was uploaded in full.
            if upload is None or upload["data"] is None:
                return {"ok": False, "error": "file_not_found"}
            upload["shared"] = {
                "channel": payload.get("channel_id", ""),
                "thread_ts": payload.get("thread_ts", ""),
                "title": entry.get("title", ""),
                "initial_comment": payload.get("initial_comment", ""),
            }
            shared.append({"id": entry["id"], "title": entry.get("title", "")})
        return {"ok": True, "files": shared}

    async def upload(self, request: web.Request) -> web.Response:
        """The upload URL files.getUploadURLExternal gave: the file's bytes, of the length
        announced (Slack refuses others)."""
        upload = self.uploads.get(request.match_info["id"])
        data = await request.read()
        await self._record("files:upload", {"file": request.match_info["id"], "size": len(data)})
        if upload is None:
            return web.Response(status=404)
        if len(data) != upload["length"]:
            return web.Response(status=400, text="length mismatch")
        upload["data"] = data
        return web.Response(text=f"OK - {len(data)}")

    async def response(self, request: web.Request) -> web.Response:
        await self._record("response_url:" + request.match_info["name"], await request.json())
        return web.Response(text="ok")

    async def file(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        await self._record("files:download", {"file": request.match_info["id"], "_token": token})
        hosted = self.files.get(request.match_info["id"])
        if hosted is None:
            return web.Response(status=404)
        if token != self.token:
            # What Slack does without a valid token: its sign-in page, with 200.
            return web.Response(
                text="<!DOCTYPE html><html>Sign in</html>", content_type="text/html"
            )
        response = web.StreamResponse()
        await response.prepare(request)
        data = hosted[0]
        for start in range(0, len(data), 64 * 1024):
            await response.write(data[start : start + 64 * 1024])
        await response.write_eof()
        return response

    # -- Socket Mode ----------------------------------------------------------------------------
    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async with self._changed:
            self._sockets.append(ws)
            self._changed.notify_all()
        await ws.send_json({"type": "hello", "num_connections": 1})
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                data = json.loads(message.data)
                async with self._changed:
                    self.socket_acks.append(data)
                    self._changed.notify_all()
        return ws

    async def socket_send(self, envelope: dict[str, Any]) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: bool(self._sockets)), GUARD)
        await self._sockets[-1].send_json(envelope)

    async def wait_for_ack(self, envelope_id: str) -> dict[str, Any]:
        def acked() -> bool:
            return any(a.get("envelope_id") == envelope_id for a in self.socket_acks)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(acked), GUARD)
        return next(a for a in self.socket_acks if a.get("envelope_id") == envelope_id)

    async def close_sockets(self) -> None:
        for ws in self._sockets:
            await ws.close()


def invalid_arguments(names: list[str]) -> dict[str, Any]:
    """Slack's answer to a call missing what the method requires."""
    return {
        "ok": False,
        "error": "invalid_arguments",
        "response_metadata": {"messages": [f"[ERROR] missing required field: {n}" for n in names]},
    }


@asynccontextmanager
async def fake_slack_api() -> AsyncIterator[FakeSlackApi]:
    fake = FakeSlackApi()
    app = web.Application()
    app.router.add_route("*", "/api/{method}", fake.api)
    app.router.add_post("/response/{name}", fake.response)
    app.router.add_get("/files/{id}/{rest:.*}", fake.file)
    app.router.add_post("/upload/{id}", fake.upload)
    app.router.add_get("/socket", fake.socket)
    async with on_loopback(app) as fake.port:
        try:
            yield fake
        finally:
            await fake.close_sockets()
