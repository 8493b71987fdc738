"""The admin HTTP API on a real loopback server: bearer token, uploads, activation, rollback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import aiohttp
import docx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.server import build_app
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.store.database import Storage
from tests.documents import docx_bytes, make_pdf
from tests.test_policies import LIVESTREAM, V1, V2

#: A test client of the server app (aiohttp's TestClient is generic in both).
AdminClient = TestClient[web.Request, web.Application]

TOKEN = "s3cret-admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def make_bot(settings: Settings) -> Callable[[str], PolicyBot]:
    def make(token: str) -> PolicyBot:
        bot = PolicyBot.create(
            replace(settings, admin_token=token, max_upload_bytes=64 * 1024),
            storage=Storage.memory(),
        )
        bot.policies.upload("acme.md", V1.encode(), activate=True)
        return bot

    return make


@pytest.fixture
async def client(make_bot: Callable[[str], PolicyBot]) -> AsyncIterator[AdminClient]:
    async with TestClient(TestServer(build_app(make_bot(TOKEN)), host="127.0.0.1")) as c:
        yield c


def bot_of(client: AdminClient) -> PolicyBot:
    from adapters.server import BOT_KEY

    return client.app[BOT_KEY]


async def test_disabled_without_a_token(make_bot: Callable[[str], PolicyBot]) -> None:
    async with TestClient(TestServer(build_app(make_bot("")), host="127.0.0.1")) as c:
        response = await c.get("/admin/policies", headers=AUTH)
        assert response.status == 404
        assert "POLICYBOT_ADMIN_TOKEN" in (await response.json())["error"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer"])
async def test_wrong_or_missing_token_is_refused_and_changes_nothing(
    client: AdminClient, header: str | None
) -> None:
    before = bot_of(client).storage.versions()
    headers = {"Authorization": header} if header else {}
    response = await client.post(
        "/admin/policies?filename=acme.md&activate=1", data=V2.encode(), headers=headers
    )
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert bot_of(client).storage.versions() == before


async def test_multipart_upload_stages_then_activate_and_rollback(client: AdminClient) -> None:
    form = aiohttp.FormData()
    form.add_field("file", V2.encode(), filename="acme.md", content_type="text/markdown")
    form.add_field("by", "jane@acme.example")
    response = await client.post("/admin/policies", data=form, headers=AUTH)
    assert response.status == 201, await response.text()
    body = await response.json()
    version = body["version"]
    assert version["status"] == "staged" and version["uploaded_by"] == "jane@acme.example"
    assert [c["section"] for c in body["changes"]["added"]] == ["4"]
    assert body["changes"]["changed"][0]["new"]["text"].startswith("Employees must never")
    assert "1 changed" in body["summary"]

    again = await client.post("/admin/policies?filename=acme.md", data=V2.encode(), headers=AUTH)
    assert again.status == 200 and (await again.json())["created"] is False

    listing = await (await client.get("/admin/policies", headers=AUTH)).json()
    [document] = listing["documents"]
    assert document["document"] == "acme" and len(document["versions"]) == 2
    v1 = document["active"]

    diff = await client.get(f"/admin/policies/{version['id']}/diff", headers=AUTH)
    assert (await diff.json())["against"] == v1

    activated = await client.post(f"/admin/policies/{version['id']}/activate", headers=AUTH)
    assert (await activated.json())["version"]["status"] == "active"
    answer = await bot_of(client).ask(IncomingQuestion(LIVESTREAM))
    assert answer.answered and answer.citations[0].section == "4"

    rolled = await client.post("/admin/policies/rollback?document=acme", headers=AUTH)
    assert (await rolled.json())["version"]["id"] == v1
    assert not (await bot_of(client).ask(IncomingQuestion(LIVESTREAM))).answered


async def test_raw_body_docx_upload_with_activate(client: AdminClient) -> None:
    document = docx.Document()
    document.add_heading("Acme Device Policy", 0)
    document.add_heading("7. Lost phones", 1)
    document.add_paragraph(
        "Report a lost or stolen phone that holds company email to the IT service desk "
        "within one hour so that it can be wiped remotely."
    )
    response = await client.post(
        "/admin/policies?filename=devices.docx&activate=1",
        data=docx_bytes(document),
        headers=AUTH,
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["version"]["status"] == "active" and body["activation"]["changed"]
    active = {v.document for v in bot_of(client).storage.active_versions()}
    assert active == {"acme", "devices"}


async def test_staged_version_can_be_discarded_but_not_an_active_one(client: AdminClient) -> None:
    staged = await client.post("/admin/policies?filename=acme.md", data=V2.encode(), headers=AUTH)
    version_id = (await staged.json())["version"]["id"]
    gone = await client.delete(f"/admin/policies/{version_id}", headers=AUTH)
    assert gone.status == 200 and (await gone.json())["discarded"]["id"] == version_id
    missing = await client.post(f"/admin/policies/{version_id}/activate", headers=AUTH)
    assert missing.status == 404 and "no policy version" in (await missing.json())["error"]
    [active] = bot_of(client).storage.active_versions()
    refused = await client.delete(f"/admin/policies/{active.id}", headers=AUTH)
    assert refused.status == 400 and "staged" in (await refused.json())["error"]


@pytest.mark.parametrize(
    ("query", "data", "status", "message"),
    [
        ("?filename=acme.pdf&activate=1", make_pdf([["1. Scope", "x"]])[:300], 400, "damaged"),
        ("?filename=acme.pdf&activate=1", make_pdf([[]]), 400, "no text layer"),
        ("?filename=acme.md&activate=1", b"", 400, "empty"),
        ("?filename=acme.exe&activate=1", b"MZ", 400, "unsupported"),
        ("?activate=1", V2.encode(), 400, "filename="),
        ("?filename=acme.md&activate=1", b"x" * (70 * 1024), 413, "limit"),
    ],
    ids=["corrupt-pdf", "scanned-pdf", "empty", "unsupported", "no-filename", "too-large"],
)
async def test_bad_uploads_get_clear_errors_and_change_nothing(
    client: AdminClient, query: str, data: bytes, status: int, message: str
) -> None:
    before = bot_of(client).storage.versions()
    response = await client.post(f"/admin/policies{query}", data=data, headers=AUTH)
    assert response.status == status
    assert message in (await response.json())["error"]
    assert bot_of(client).storage.versions() == before
    assert (await bot_of(client).ask(IncomingQuestion("can I mention a product launch?"))).answered


async def test_multipart_without_a_file_field(client: AdminClient) -> None:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("name", "acme")
    response = await client.post("/admin/policies", data=form, headers=AUTH)
    assert response.status == 400 and "'file'" in (await response.json())["error"]
