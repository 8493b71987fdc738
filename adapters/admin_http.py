"""Policy administration over HTTP: upload, list, diff, activate, discard, roll back and
retire.

Every route needs `Authorization: Bearer $POLICYBOT_ADMIN_TOKEN`; with no token set the
routes answer 404 saying how to enable them. The handlers only translate HTTP to the core's
PolicyLibrary and its results to JSON.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from bot import access, messages
from bot.core import PolicyBot
from bot.models import PolicyError
from bot.policies import NotAuthorized, NotFound, UploadResult, version_json
from bot.store.database import StorageError

Handler = Callable[[web.Request], Awaitable[web.Response]]

DISABLED = messages.HTTP_ADMIN_DISABLED
TRUTHY = {"1", "true", "yes", "on"}
MALFORMED_FORM = messages.HTTP_MALFORMED_FORM


def _upload_json(result: UploadResult) -> str:
    body = result.as_json()
    body["summary"] = result.as_text()
    return json.dumps(body)


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


class AdminApi:
    def __init__(self, bot: PolicyBot) -> None:
        self.bot = bot

    def register(self, app: web.Application) -> None:
        guard = self._guarded
        app.router.add_post("/admin/policies", guard(self.upload))
        app.router.add_get("/admin/policies", guard(self.list_versions))
        app.router.add_post("/admin/policies/rollback", guard(self.rollback))
        # {version}: an id, or DOCUMENT@N (or "DOCUMENT vN", URL-encoded) as texts show it.
        app.router.add_get("/admin/policies/{version}/diff", guard(self.diff))
        app.router.add_post("/admin/policies/{version}/activate", guard(self.activate))
        app.router.add_delete("/admin/policies/{version}", guard(self.discard))
        app.router.add_post("/admin/policies/{document}/retire", guard(self.retire))

    # -- authorization and errors, for every route ------------------------------------------------
    def _guarded(self, handler: Handler) -> Handler:
        async def wrapper(request: web.Request) -> web.Response:
            token = self.bot.settings.admin_token
            if not token:
                return _error(404, DISABLED)
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()
            ):
                access.refused(
                    f"admin {request.method} {request.path}",
                    platform="http",
                    who=request.remote or "",
                    reason="wrong admin token" if given.strip() else "no admin token",
                )
                return _error(
                    401,
                    messages.HTTP_TOKEN_REQUIRED,
                    **{"WWW-Authenticate": 'Bearer realm="policybot admin"'},
                )
            try:
                return await handler(request)
            except NotAuthorized as error:
                return _error(403, str(error))
            except NotFound as error:
                return _error(404, str(error))
            except PolicyError as error:
                return _error(400, str(error))
            except StorageError as error:
                return _error(503, str(error))

        return wrapper

    @staticmethod
    def _keep_example(request: web.Request, form: dict[str, str] | None = None) -> bool:
        given = (form or {}).get("keep_example") or request.query.get("keep_example", "")
        return given.lower() in TRUTHY

    @staticmethod
    def _by(request: web.Request, form: dict[str, str] | None = None) -> str:
        by = (form or {}).get("by") or request.query.get("by") or "http-admin"
        return by.strip()[:200]

    # -- routes ---------------------------------------------------------------------------------
    async def upload(self, request: web.Request) -> web.Response:
        """multipart/form-data with a `file` part (and optional `name`, `activate`, `by`
        fields), or the raw file as the body with `?filename=`."""
        limit = self.bot.settings.max_upload_bytes
        if request.content_length is not None and request.content_length > limit + 64 * 1024:
            return _error(413, messages.http_over_limit("The upload", limit))
        form: dict[str, str] = {}
        if request.content_type.startswith("multipart/"):
            try:
                filename, data = await self._read_form(request, limit, form)
            except (HttpProcessingError, ValueError, LookupError, RuntimeError):
                # aiohttp's errors here quote the raw bytes: the message says what to send.
                return _error(400, MALFORMED_FORM)
            if not filename:
                return _error(400, messages.HTTP_NO_FILE_FIELD)
        else:
            filename = request.query.get("filename", "")
            if not filename:
                return _error(400, messages.HTTP_NO_FILENAME)
            data = await request.read()
        if len(data) > limit:
            return _error(413, messages.http_over_limit(filename, limit))
        activate = (form.get("activate") or request.query.get("activate", "")).lower() in TRUTHY
        result = await self.bot.policies.upload_in_background(
            filename,
            data,
            uploaded_by=self._by(request, form),
            name=form.get("name") or request.query.get("name") or None,
            activate=activate,
            keep_example=self._keep_example(request, form),
            worker=self.bot.worker,
        )
        # A long document's summary and JSON (every clause it adds) are built off the loop.
        body = await asyncio.to_thread(_upload_json, result)
        return web.Response(
            text=body, content_type="application/json", status=201 if result.created else 200
        )

    async def _read_form(
        self, request: web.Request, limit: int, form: dict[str, str]
    ) -> tuple[str, bytes]:
        """The `file` part's name and bytes (at most one byte past `limit`); other fields into
        `form`, cut to 500 characters."""
        filename, data = "", b""
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                filename = part.filename or ""
                data = await self._read_capped(part, limit)
            elif part.name:
                form[part.name] = (await part.text())[:500]
        return filename, data

    @staticmethod
    async def _read_capped(part: BodyPartReader, limit: int) -> bytes:
        """Read a file part, stopping one byte past the limit so the core can refuse it."""
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = await part.read_chunk()
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)

    async def list_versions(self, request: web.Request) -> web.Response:
        document = request.query.get("document") or None
        versions = await self.bot.worker.run(self.bot.storage.versions, document)
        documents: dict[str, dict[str, Any]] = {}
        for v in versions:
            entry = documents.setdefault(
                v.document, {"document": v.document, "active": None, "versions": []}
            )
            entry["versions"].append(version_json(v))
            if v.status == "active":
                entry["active"] = v.id
        return web.json_response({"documents": list(documents.values())})

    async def _version(self, request: web.Request) -> int:
        """The version a path names, by `PolicyLibrary.find_version` (NotFound: 404)."""
        found = await self.bot.worker.run(
            self.bot.policies.find_version, request.match_info["version"]
        )
        return found.id

    async def diff(self, request: web.Request) -> web.Response:
        # Every database call goes through the worker: a write lock another process holds
        # (a `policy load`) then holds up this request, not `/healthz` or Slack's acks.
        changes = await self.bot.worker.run(self.bot.policies.diff, await self._version(request))
        return web.json_response({**changes.as_json(), "summary": changes.as_text()})

    async def activate(self, request: web.Request) -> web.Response:
        activation = await self.bot.worker.run(
            self.bot.policies.activate,
            await self._version(request),
            by=self._by(request),
            keep_example=self._keep_example(request),
        )
        return web.json_response({**activation.as_json(), "summary": activation.as_text()})

    async def retire(self, request: web.Request) -> web.Response:
        retirement = await self.bot.worker.run(
            self.bot.policies.retire, request.match_info["document"], by=self._by(request)
        )
        return web.json_response({**retirement.as_json(), "summary": retirement.as_text()})

    async def discard(self, request: web.Request) -> web.Response:
        version = await self.bot.worker.run(self.bot.policies.discard, await self._version(request))
        return web.json_response({"discarded": version_json(version)})

    async def rollback(self, request: web.Request) -> web.Response:
        document = request.query.get("document") or None
        activation = await self.bot.worker.run(
            self.bot.policies.rollback, document, by=self._by(request)
        )
        return web.json_response({**activation.as_json(), "summary": activation.as_text()})


def register(app: web.Application, bot: PolicyBot) -> None:
    AdminApi(bot).register(app)
