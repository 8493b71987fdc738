"""Versions named as every text shows them: "acme v2" or "acme@2" (and the id, as before),
on the command line and the admin HTTP API on a real loopback server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.server import BOT_KEY, build_app
from bot.config import Settings
from bot.core import PolicyBot
from bot.store.database import Storage
from tests.conftest import RunCli
from tests.reliability import record
from tests.test_policies import V1, V2

AdminClient = TestClient[web.Request, web.Application]
TOKEN = "version-reference-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
V3 = V2.replace("Acme Social Media Policy", "Acme Social Media Policy (draft)")


@pytest.fixture
def acme(run: RunCli, tmp_path: Path) -> list[Path]:
    """acme v1 active, acme v2 staged; the paths of the three versions' files."""
    paths = []
    for number, text in enumerate((V1, V2, V3), start=1):
        path = tmp_path / f"v{number}" / "acme.md"
        path.parent.mkdir()
        path.write_text(text)
        paths.append(path)
    assert run("policy", "load", str(paths[0])).exit_code == 0
    staged = run("policy", "load", "--stage", str(paths[1]))
    assert staged.exit_code == 0, staged.output
    return paths


def test_staged_upload_says_how_to_name_it(run: RunCli, acme: list[Path]) -> None:
    staged = run("policy", "load", "--stage", str(acme[2]))
    assert "`policybot policy activate acme@3` or `policybot policy discard acme@3`" in (
        staged.output
    )


@pytest.mark.parametrize("typed", [("acme", "v2"), ("acme v2",), ("acme@2",), ("ACME", "V2")])
def test_activate_takes_the_per_document_form(
    run: RunCli, acme: list[Path], typed: tuple[str, ...]
) -> None:
    activated = run("policy", "activate", *typed)
    assert activated.exit_code == 0, activated.output
    assert "acme v2" in activated.output and "is now active (was acme v1" in activated.output


def test_activate_by_id_still_works(run: RunCli, acme: list[Path]) -> None:
    activated = run("policy", "activate", "2")
    assert activated.exit_code == 0, activated.output
    assert "is now active (was acme v1" in activated.output


def test_diff_and_discard_take_the_per_document_form(run: RunCli, acme: list[Path]) -> None:
    diff = run("policy", "diff", "acme", "v2")
    assert diff.exit_code == 0, diff.output
    assert "~ changed 2.2 Product launches" in diff.output
    discarded = run("policy", "discard", "acme@2")
    assert discarded.exit_code == 0, discarded.output
    assert "Discarded acme v2" in discarded.output
    assert "acme v2" not in run("policy", "list").output


def test_show_prints_a_named_version(run: RunCli, acme: list[Path]) -> None:
    shown = run("policy", "show", "acme", "v2")
    assert shown.exit_code == 0, shown.output
    assert "acme v2" in shown.output and ", staged" in shown.output
    assert "must never mention upcoming product launches" in shown.output
    active = run("policy", "show", "acme")
    assert "acme v1" in active.output and "may mention upcoming product launches" in active.output


def test_list_shows_both_forms(run: RunCli, acme: list[Path]) -> None:
    listed = run("policy", "list").output
    assert "acme v1" in listed and "acme v2" in listed
    assert "DOCUMENT vN, DOCUMENT@N or its id" in listed


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (("acme", "v9"), "acme has no version v9; it has acme v1, acme v2."),
        (("acme",), "acme is a document; name one of its versions: acme v1, acme v2."),
        (("nothing@1",), "There is no policy document named 'nothing'."),
        (("what?",), "'what?' names no policy version; give DOCUMENT vN"),
        (("9" * 25,), "There is no policy version 999999999999999999…."),
    ],
)
def test_errors_name_versions_as_texts_show_them(
    run: RunCli, acme: list[Path], typed: tuple[str, ...], expected: str
) -> None:
    for command in ("activate", "discard", "diff"):
        refused = run("policy", command, *typed)
        assert refused.exit_code != 0
        assert expected in " ".join(refused.output.split()), refused.output


def test_show_of_an_unknown_document_says_so(run: RunCli, acme: list[Path]) -> None:
    refused = run("policy", "show", "nothing")
    assert refused.exit_code != 0 and "no policy document named 'nothing'" in refused.output


# -- the admin HTTP API ------------------------------------------------------------------------
@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AdminClient]:
    bot = PolicyBot.create(replace(settings, admin_token=TOKEN), storage=Storage.memory())
    bot.policies.upload("acme.md", V1.encode(), activate=True)
    bot.policies.upload("acme.md", V2.encode())
    async with TestClient(TestServer(build_app(bot), host="127.0.0.1")) as c:
        yield c


async def test_http_diff_activate_and_discard_take_the_per_document_form(
    client: AdminClient,
) -> None:
    diff = await client.get("/admin/policies/acme%20v2/diff", headers=AUTH)
    assert diff.status == 200, await diff.text()
    assert (await diff.json())["version"] == 2
    activated = await client.post("/admin/policies/acme@2/activate", headers=AUTH)
    assert activated.status == 200, await activated.text()
    assert "acme v2" in (await activated.json())["summary"]
    bot: PolicyBot = client.app[BOT_KEY]
    bot.policies.upload("acme.md", V3.encode())
    discarded = await client.delete("/admin/policies/acme@3", headers=AUTH)
    assert discarded.status == 200, await discarded.text()
    assert (await discarded.json())["discarded"]["number"] == 3
    by_id = await client.post("/admin/policies/1/activate", headers=AUTH)
    assert by_id.status == 200 and "acme v1" in (await by_id.json())["summary"]


async def test_http_unknown_version_is_404_naming_the_versions(client: AdminClient) -> None:
    response = await client.post("/admin/policies/acme@9/activate", headers=AUTH)
    assert response.status == 404
    assert (await response.json())["error"] == "acme has no version v9; it has acme v1, acme v2."
    document = await client.delete("/admin/policies/acme", headers=AUTH)
    assert document.status == 404 and "name one of its versions" in (await document.json())["error"]


#: What an admin (or a script) might put where a version goes in a path.
ODD_REFERENCES = [
    "9" * 40,
    "acme@" + "9" * 40,
    "acme%20v",
    "acme@",
    "@2",
    "%00",
    "acme%00@2",
    "..",
    "acme@-1",
    "acme@2.5",
    "x" * 4000 + "@1",
    "%E2%80%AEacme@2",
    "acme%40%40%402",
]


async def test_http_odd_version_references_are_404_and_change_nothing(
    client: AdminClient,
) -> None:
    bot: PolicyBot = client.app[BOT_KEY]
    before = bot.storage.versions()
    statuses: dict[int, int] = {}
    for reference in ODD_REFERENCES:
        for method, path in (
            ("GET", f"/admin/policies/{reference}/diff"),
            ("POST", f"/admin/policies/{reference}/activate"),
            ("DELETE", f"/admin/policies/{reference}"),
        ):
            response = await client.request(method, path, headers=AUTH)
            statuses[response.status] = statuses.get(response.status, 0) + 1
            assert response.status in {400, 404}, (path[:80], await response.text())
            if response.content_type == "application/json":
                error = (await response.json())["error"]
                assert "\x00" not in error and "\u202e" not in error and len(error) < 400
    assert bot.storage.versions() == before
    record(
        "Admin API: odd version references in the path (ids past SQLite's range, empty, "
        "NUL, bidi controls, 4,000-character names)",
        "pytest tests/test_version_refs.py -k odd",
        requests=sum(statuses.values()),
        refused_404=statuses.get(404, 0),
        refused_400=statuses.get(400, 0),
        server_errors=0,
        versions_changed=0,
    )
