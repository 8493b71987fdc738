"""Documents a real organization can run: its first policy replaces the bundled example,
`policy retire`, the same content under another name caught, version numbers per document,
and texts that come from the active policy rather than the example's organization."""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.console import chat
from adapters.server import build_app
from bot.answering.extractive import ExtractiveAnswerer
from bot.answering.outcome import Outcome
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Actor, Clause, IncomingQuestion, Retrieval, ScoredClause, StoredClause
from bot.store.database import Storage
from tests.conftest import RunCli
from tests.test_policies import LIVESTREAM, V1, V2

AdminClient = TestClient[web.Request, web.Application]
TOKEN = "documents-admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLE = "social-media-and-electronic-communication"
#: Answered by the bundled example (its section on offsites), not by Acme's policy.
EXAMPLE_QUESTION = "can I post pictures from the team offsite on instagram?"
OWNED = """---
title: Northwind Posting Rules
owners: [Finance, People Operations]
---

# Northwind Posting Rules

## 1. Customers

Employees must not name a customer of Northwind in any public post without written consent.
"""


def listed(run: RunCli) -> dict[str, str]:
    """document -> status of its newest version, from `policy list`'s rows."""
    output = run("policy", "list").output
    return {
        line.split()[1]: line
        for line in output.splitlines()
        if line.startswith("│") and len(line.split()) > 2
    }


def ask_json(run: RunCli, question: str) -> dict[str, object]:
    result = run("ask", "--json", question)
    assert result.exit_code == 0, result.output
    answer: dict[str, object] = json.loads(result.output)
    return answer


# -- the first real policy replaces the example -------------------------------------------------
def test_first_real_policy_retires_the_bundled_example(run: RunCli, tmp_path: Path) -> None:
    before = ask_json(run, EXAMPLE_QUESTION)  # a fresh database: the example answers
    assert EXAMPLE in str(before["policy_version"])
    path = tmp_path / "acme.md"
    path.write_text(V1)
    loaded = run("policy", "load", str(path))
    assert loaded.exit_code == 0, loaded.output
    assert "bundled example policy" in loaded.output and "is retired" in loaded.output
    assert "(staged)" not in loaded.output, loaded.output  # it is active, and says so once
    assert "acme v1" in loaded.output and "is now active" in loaded.output
    after = ask_json(run, EXAMPLE_QUESTION)
    assert EXAMPLE not in str(after["policy_version"])
    assert all(c["document"] == "acme" for c in after["citations"])  # type: ignore[attr-defined]
    history = run("policy", "history", EXAMPLE).output
    assert "retired" in history


def test_keep_example_keeps_both_answering(run: RunCli, tmp_path: Path) -> None:
    ask_json(run, EXAMPLE_QUESTION)
    path = tmp_path / "acme.md"
    path.write_text(V1)
    loaded = run("policy", "load", "--keep-example", str(path))
    assert loaded.exit_code == 0, loaded.output
    assert "retired" not in loaded.output
    assert EXAMPLE in str(ask_json(run, EXAMPLE_QUESTION)["policy_version"])


def test_example_detection_keys_on_the_load_not_the_title(
    settings: Settings, tmp_path: Path
) -> None:
    """A real policy whose title is the example's is no example: loading it beside another
    real policy retires nothing."""
    bot = PolicyBot.create(settings, storage=Storage.memory())
    bundled = (settings.policies_dir / f"{EXAMPLE}.md").read_text()
    lookalike = bundled.replace("We ", "Our staff ", 1) + "\nThis copy is our own.\n"
    bot.policies.upload("lookalike.md", lookalike.encode(), activate=True)
    activation = bot.policies.upload("acme.md", V1.encode(), activate=True).activation
    assert activation is not None and activation.retired_examples == ()
    assert {v.document for v in bot.storage.active_versions()} == {"lookalike", "acme"}


# -- retire -------------------------------------------------------------------------------------
def test_retire_takes_a_document_out_and_activating_brings_it_back(
    run: RunCli, tmp_path: Path
) -> None:
    path = tmp_path / "acme.md"
    path.write_text(V1)
    assert run("policy", "load", str(path)).exit_code == 0
    retired = run("policy", "retire", "acme")
    assert retired.exit_code == 0, retired.output
    assert "Retired acme v1" in retired.output
    assert ask_json(run, LIVESTREAM)["citations"] == []
    assert "retired" in run("policy", "history", "acme").output
    assert "no active version" in run("policy", "retire", "acme").output
    rollback = run("policy", "rollback", "acme")
    assert rollback.exit_code != 0 and "is retired" in rollback.output
    assert run("policy", "retire", "nosuch").exit_code != 0
    back = run("policy", "activate", "1")
    assert back.exit_code == 0 and "acme v1" in back.output
    assert ask_json(run, "may I share customer prices on my account?")["answered"]


def test_retire_use_case_is_for_admins_only(settings: Settings) -> None:
    bot = PolicyBot.create(replace(settings, admins=("slack:U0ADMIN",)), storage=Storage.memory())
    bot.policies.upload("acme.md", V1.encode(), activate=True)
    refused = bot.retire_document(Actor("slack", "U0OTHER"), "acme")
    assert refused.version is None and "only policy admins" in refused.text
    assert [v.document for v in bot.storage.active_versions()] == ["acme"]
    done = bot.retire_document(Actor("slack", "U0ADMIN"), "acme")
    assert done.version is not None and done.version.status == "retired"
    assert bot.storage.active_versions() == []
    assert bot.storage.activations("acme")[-1]["activated_by"] == "slack:U0ADMIN"


# -- the same content under another name --------------------------------------------------------
def test_renamed_copy_is_refused_naming_its_document(run: RunCli, tmp_path: Path) -> None:
    original, copy = tmp_path / "acme.md", tmp_path / "acme-copy.md"
    original.write_text(V1)
    copy.write_text(V1)
    assert run("policy", "load", str(original)).exit_code == 0
    refused = run("policy", "load", str(copy))
    assert refused.exit_code != 0
    assert "same content as acme v1" in refused.output and "--name acme" in refused.output
    assert "acme-copy" not in listed(run)
    as_version = run("policy", "load", "--name", "acme", str(copy))
    assert as_version.exit_code == 0 and "already stored as acme v1" in as_version.output


# -- numbers per document, and what a plain load prints -----------------------------------------
def test_versions_are_numbered_per_document(run: RunCli, tmp_path: Path) -> None:
    for folder, name, text in (("a", "acme", V1), ("b", "other", V1 + "\nMore.\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{name}.md").write_text(text)
        assert run("policy", "load", str(tmp_path / folder / f"{name}.md")).exit_code == 0
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "other.md").write_text(V2)
    second = run("policy", "load", str(tmp_path / "c" / "other.md")).output
    # The version's date is the day it was loaded: any day, as long as it is shown.
    assert "other v2" in second, second
    assert re.search(r"against other v1 \(\d{4}-\d{2}-\d{2}\) \(retired\)", second), second
    assert "first version of this document" not in second


def test_show_without_owners_prints_no_blank_owners(run: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "acme.md"
    path.write_text(V1)
    run("policy", "load", str(path))
    shown = run("policy", "show").output
    assert "owners:" not in shown and "# Acme Social Media Policy — acme v1" in shown


def test_see_also_drops_a_title_colon() -> None:
    def scored(section: str, title: str, score: float) -> ScoredClause:
        clause = Clause(text="Employees must ask first.", section=section, section_title=title)
        return ScoredClause(StoredClause(1, 1, "acme", clause), score)

    ranked = (scored("", "Before you post:", 2.0), scored("", "Photos at events:", 1.9))
    draft = ExtractiveAnswerer().compose(
        Retrieval("q", ranked, 0.9, (1,)), outcome=Outcome.ANSWERED
    )
    assert "“Before you post”" in draft.lead and "(see also Photos at events)" in draft.lead


# -- texts from the active policy ---------------------------------------------------------------
async def test_not_covered_names_the_active_policys_owners(settings: Settings) -> None:
    bot = PolicyBot.create(settings, storage=Storage.memory())
    bot.policies.upload("northwind.md", OWNED.encode(), activate=True)
    answer = await bot.ask(IncomingQuestion("what is the cafeteria menu on fridays?"))
    assert not answer.answered
    assert "(Finance and People Operations)" in answer.lead
    assert "HR, IT, Marketing" not in answer.lead
    bot.policies.retire("northwind")
    bot.policies.upload("acme.md", V1.encode(), activate=True)  # names no owners
    unowned = await bot.ask(IncomingQuestion("what is the cafeteria menu on fridays?"))
    assert "for the policy team, who review" in unowned.lead


async def test_chat_banner_example_comes_from_the_active_policy(settings: Settings) -> None:
    bot = PolicyBot.create(settings, storage=Storage.memory())
    bot.policies.upload("northwind.md", OWNED.encode(), activate=True)
    out = io.StringIO()
    await chat(bot, io.StringIO("!help\n!quit\n"), out)
    assert "what does the policy say about customers?" in out.getvalue()
    assert "offsite" not in out.getvalue()


# -- the HTTP admin API on loopback -------------------------------------------------------------
@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AdminClient]:
    bot = PolicyBot.create(replace(settings, admin_token=TOKEN), storage=Storage.memory())
    bot.ensure_policy()
    async with TestClient(TestServer(build_app(bot), host="127.0.0.1")) as c:
        yield c


async def test_http_upload_replaces_example_and_retire_works(client: AdminClient) -> None:
    uploaded = await client.post(
        "/admin/policies?filename=acme.md&activate=1", data=V1.encode(), headers=AUTH
    )
    body = await uploaded.json()
    assert uploaded.status == 201, body
    assert body["activation"]["retired_examples"] and "is retired" in body["summary"]
    listing = await (await client.get("/admin/policies", headers=AUTH)).json()
    active = {d["document"]: d["active"] for d in listing["documents"]}
    assert active[EXAMPLE] is None and active["acme"] is not None

    copy = await client.post(
        "/admin/policies?filename=acme-copy.md", data=V1.encode(), headers=AUTH
    )
    assert copy.status == 400 and "same content as acme v1" in (await copy.json())["error"]

    unauthorized = await client.post("/admin/policies/acme/retire")
    assert unauthorized.status == 401
    retired = await client.post("/admin/policies/acme/retire?by=jane", headers=AUTH)
    result = await retired.json()
    assert retired.status == 200, result
    assert result["retired"]["document"] == "acme" and "Retired acme v1" in result["summary"]
    missing = await client.post("/admin/policies/nosuch/retire", headers=AUTH)
    assert missing.status == 404


async def test_http_keep_example(client: AdminClient) -> None:
    uploaded = await client.post(
        "/admin/policies?filename=acme.md&activate=1&keep_example=1",
        data=V1.encode(),
        headers=AUTH,
    )
    body = await uploaded.json()
    assert body["activation"]["retired_examples"] == []
    listing = await (await client.get("/admin/policies", headers=AUTH)).json()
    assert all(d["active"] is not None for d in listing["documents"])


def test_staged_upload_says_it_will_replace_the_example(settings: Settings) -> None:
    bot = PolicyBot.create(settings, storage=Storage.memory())
    bot.ensure_policy()
    staged = bot.policies.upload("acme.md", V1.encode())
    assert "retires the bundled example" in staged.example_note
    assert staged.example_note in staged.as_text()


def test_migration_numbers_existing_versions_per_document_and_marks_the_bundled(
    tmp_path: Path,
) -> None:
    """A database from before per-document numbers: its versions get them, in upload order,
    and the bundled load's versions the example's mark."""
    import sqlite_utils

    from bot.store.schema import migrations

    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    migrations.apply(old, stop_before="m008_document_numbers_and_bundled")
    old.table("documents").insert_all(
        [{"id": 1, "name": "example", "title": "E"}, {"id": 2, "name": "acme", "title": "A"}]
    )
    rows = [(1, 1, "bundled"), (2, 2, "cli"), (3, 1, "cli"), (4, 2, "cli")]
    old.table("versions").insert_all(
        {"id": i, "document_id": d, "uploaded_by": by, "status": "staged"} for i, d, by in rows
    )
    old.close()
    storage = Storage.open(path)
    try:
        numbered = {v.id: (v.document, v.number, v.bundled) for v in storage.versions()}
        assert numbered == {
            1: ("example", 1, True),
            2: ("acme", 1, False),
            3: ("example", 2, False),
            4: ("acme", 2, False),
        }
    finally:
        storage.close()


async def test_chat_upload_activated_by_button_replaces_example_and_retire_button(
    settings: Settings,
) -> None:
    """The Slack and Teams path: `receive_upload`, then Activate (`settle_upload`), retires
    the example; RETIRE under the same message takes the document out again."""
    from bot.policies import ACTIVATE, RETIRE

    admin = Actor("slack", "U0ADMIN")
    bot = PolicyBot.create(replace(settings, admins=("slack:U0ADMIN",)), storage=Storage.memory())
    bot.ensure_policy()

    async def fetch() -> bytes:
        return V1.encode()

    reply = await bot.receive_upload(admin, "acme.md", fetch)
    assert reply.result is not None and "retires the bundled example" in reply.result.example_note
    settled = bot.settle_upload(admin, reply.result.version.id, ACTIVATE)
    assert "is now active" in settled.text and "bundled example policy" in settled.text
    assert [v.document for v in bot.storage.active_versions()] == ["acme"]
    retired = bot.settle_upload(admin, reply.result.version.id, RETIRE)
    assert "Retired acme v1" in retired.text and bot.storage.active_versions() == []
