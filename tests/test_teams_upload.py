"""Policy uploads in Teams over HTTP: an admin attaches a file in personal chat, the bot
downloads it from a loopback file host, shows the changes on a card, and Activate / Discard
act on it. Replies are recorded by the Bot Framework connector stub."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.server import build_app
from bot.config import Settings
from bot.core import PolicyBot
from bot.messages import ADMIN_ONLY
from tests.fakes.bot_connector import ConnectorStub
from tests.fakes.file_server import FileServer, file_server
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.teams_activities import ALICE, PAT, PAT_PERSONAL, file_message, message, submit
from tests.fakes.teams_harness import card_text, local_teams, post, submit_data, turns_finished
from tests.test_policies import V1 as ACME_V1


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return local_teams(settings)


ROADMAP = "may I share our unreleased roadmap on LinkedIn?"
DRONES = "may I post drone footage of a Brightwater depot?"
DRONE_CLAUSE = (
    "Employees must not fly drones over Brightwater depots or post drone footage of "
    "Brightwater sites without written approval from Security."
)
LIMIT = 64 * 1024
POLICY_TEXT = b"# Policy\n\n## 1 Posting\n\nEmployees may post about public events.\n"


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    async with file_server() as server:
        yield server


@pytest.fixture
def admin_bot(bot_with: Callable[..., PolicyBot]) -> PolicyBot:
    return bot_with(admins=("teams:AAD-PAT",), max_upload_bytes=LIMIT)


@pytest.fixture
async def server(admin_bot: PolicyBot) -> AsyncIterator[str]:
    async with serving(build_app(admin_bot, host=LOOPBACK)) as url:
        yield url


def bundled(bot: PolicyBot) -> Path:
    (active,) = bot.storage.active_versions()
    return bot.settings.policies_dir / (active.source_name or "")


def edited_policy(bot: PolicyBot) -> bytes:
    """The bundled policy with one clause reworded and a section on drones added."""
    text = bundled(bot).read_text(encoding="utf-8")
    text = text.replace("before Marketing announces them", "before Legal announces them")
    return (text + f"\n### 20.5 Drones\n\n{DRONE_CLAUSE}\n").encode()


def state(bot: PolicyBot) -> tuple[list[int], list[tuple[int, str]]]:
    """Active version ids and every version with its status: what must not change."""
    return (
        [v.id for v in bot.storage.active_versions()],
        [(v.id, v.status) for v in bot.storage.versions()],
    )


def version_submit(
    action: str, version_id: object, url: str, sender: dict[str, str] = PAT
) -> dict[str, Any]:
    value = {"policybot": action, "version_id": version_id}
    return submit(value, url, sender=sender, conversation=PAT_PERSONAL)


async def test_admin_upload_shows_changes_and_activate_makes_answers_use_it(
    admin_bot: PolicyBot, server: str, stub: ConnectorStub, files: FileServer
) -> None:
    before, _ = state(admin_bot)
    name = bundled(admin_bot).name
    url = files.add(name, edited_policy(admin_bot))
    await post(server, message(DRONES, stub.url, sender=ALICE))
    await post(server, file_message(name, url, stub.url, sender=PAT, conversation=PAT_PERSONAL))
    first_answer, upload_reply = await stub.received(2)
    assert DRONE_CLAUSE not in card_text(first_answer.card or {})
    assert files.downloads == [name]

    card = upload_reply.card
    assert card is not None and upload_reply.conversation_id == PAT_PERSONAL["id"]
    text = card_text(card)
    assert "1 added, 0 removed, 1 changed" in text
    assert "Added: 20.5 Drones" in text and DRONE_CLAUSE in text
    assert "Was: “" in text and "Marketing announces" in text and "Legal announces" in text
    actions = submit_data(card)
    assert list(actions) == ["Activate", "Discard", "Retire"]
    staged = admin_bot.storage.version(actions["Activate"]["version_id"])
    assert staged.status == "staged" and staged.uploaded_by == "Pat Policy (teams:aad-pat)"
    assert state(admin_bot)[0] == before  # uploading alone changes nothing

    await post(server, version_submit("activate_version", staged.id, stub.url))
    calls = await stub.received(3)
    assert "is now active" in calls[2].text and f"v{staged.id}" in calls[2].text
    assert [v.id for v in admin_bot.storage.active_versions()] == [staged.id]

    await post(server, message(DRONES, stub.url, sender=ALICE))
    calls = await stub.received(4)
    answer = card_text(calls[3].card or {})
    assert "20.5 Drones" in answer and f"“{DRONE_CLAUSE}”" in answer


async def test_non_admins_are_refused_before_anything_is_downloaded(
    admin_bot: PolicyBot, server: str, stub: ConnectorStub, files: FileServer
) -> None:
    name = bundled(admin_bot).name
    url = files.add(name, edited_policy(admin_bot))
    staged = admin_bot.policies.upload(name, edited_policy(admin_bot)).version
    before = state(admin_bot)
    await post(server, file_message(name, url, stub.url, sender=ALICE))
    await post(server, version_submit("activate_version", staged.id, stub.url, sender=ALICE))
    await post(server, version_submit("discard_version", staged.id, stub.url, sender=ALICE))
    calls = await stub.received(3)
    assert [c.text for c in calls] == [ADMIN_ONLY] * 3
    assert files.downloads == []
    assert state(admin_bot) == before


async def test_a_non_admin_sending_several_files_is_refused_once(
    admin_bot: PolicyBot,
    server: str,
    stub: ConnectorStub,
    files: FileServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One attempt, one refusal: three files in one message get one message and one
    security-log line, not three of each, and none is downloaded."""
    before = state(admin_bot)
    names = ["a.md", "b.md", "c.md"]
    activity = file_message(names[0], files.add(names[0], POLICY_TEXT), stub.url, sender=ALICE)
    for name in names[1:]:
        other = file_message(name, files.add(name, POLICY_TEXT), stub.url, sender=ALICE)
        activity["attachments"] += other["attachments"]
    with caplog.at_level(logging.WARNING, logger="policybot.security"):
        await post(server, activity)
        # A question after it: its answer is the next reply, so no further refusal came.
        await post(server, message(ROADMAP, stub.url, sender=ALICE))
        calls = await stub.received(2)
    assert calls[0].text == ADMIN_ONLY
    assert calls[1].card is not None and "3.3" in card_text(calls[1].card)
    logged = [r.getMessage() for r in caplog.records if r.name == "policybot.security"]
    assert logged == [
        "refused policy upload: platform=teams who=aad-alice "
        "reason=not in POLICYBOT_ADMINS for teams"
    ]
    assert files.downloads == []
    assert state(admin_bot) == before


@pytest.mark.parametrize(
    ("name", "data", "chunked", "expected"),
    [
        ("policy.pdf", b"%PDF-1.7\nthis is not really a PDF", False, "policy.pdf"),
        ("policy.md", b"", False, "empty"),
        ("policy.exe", b"MZ\x90\x00binary", False, "policy.exe"),
        ("policy.md", b"# Policy\n\n" + b"a" * (LIMIT + 1), False, "larger than"),
        ("policy.md", b"# Policy\n\n" + b"a" * (4 * LIMIT), True, "larger than"),
        ("policy.txt", "Politique en fran\u00e7ais".encode("latin-1"), False, "UTF-8"),
    ],
    ids=["corrupt-pdf", "empty", "unsupported", "too-big", "too-big-streamed", "not-utf8"],
)
async def test_bad_files_get_a_clear_message_and_change_nothing(
    admin_bot: PolicyBot,
    server: str,
    stub: ConnectorStub,
    files: FileServer,
    name: str,
    data: bytes,
    chunked: bool,
    expected: str,
) -> None:
    before = state(admin_bot)
    url = files.add(name, data, chunked=chunked)
    await post(server, file_message(name, url, stub.url, sender=PAT, conversation=PAT_PERSONAL))
    (reply,) = await stub.received(1)
    assert reply.card is None
    assert expected in reply.text and "Nothing was changed" in reply.text
    assert state(admin_bot) == before
    await post(server, message(ROADMAP, stub.url, sender=ALICE))
    calls = await stub.received(2)
    assert "3.3" in card_text(calls[1].card or {})  # ask still answers from the active version


async def test_unreachable_or_non_https_links_are_refused(
    admin_bot: PolicyBot, server: str, stub: ConnectorStub, files: FileServer
) -> None:
    before = state(admin_bot)
    missing = f"{files.url}/files/gone.md"
    for url in (missing, "http://files.example.com/policy.md"):
        await post(server, file_message("policy.md", url, stub.url, sender=PAT))
        await turns_finished()  # its turn runs after the acknowledgement: one at a time
    calls = await stub.received(2)
    assert "HTTP 404" in calls[0].text and "Nothing was changed" in calls[0].text
    assert "no HTTPS link" in calls[1].text
    assert files.downloads == ["gone.md"]
    assert state(admin_bot) == before


async def test_inline_attachment_upload_then_discard(
    admin_bot: PolicyBot, server: str, stub: ConnectorStub, files: FileServer
) -> None:
    before = state(admin_bot)
    name = bundled(admin_bot).name
    url = files.add(name, edited_policy(admin_bot))
    await post(server, file_message(name, url, stub.url, sender=PAT, inline_type="text/markdown"))
    (reply,) = await stub.received(1)
    version_id = submit_data(reply.card or {})["Discard"]["version_id"]
    await post(server, version_submit("discard_version", version_id, stub.url))
    await post(server, version_submit("activate_version", version_id, stub.url))
    calls = await stub.received(3)
    assert calls[1].text.startswith("Discarded") and "unchanged" in calls[1].text
    assert "no policy version" in calls[2].text  # the card is stale now
    assert state(admin_bot) == before


async def test_an_admins_retire_takes_the_document_out_of_answering(
    admin_bot: PolicyBot, server: str, stub: ConnectorStub, files: FileServer
) -> None:
    await post(server, message(ROADMAP, stub.url, sender=ALICE))
    (answered,) = await stub.received(1)
    (active,) = admin_bot.storage.active_versions()
    assert "3.3" in card_text(answered.card or {})  # answered from the bundled policy
    name = bundled(admin_bot).name
    url = files.add(name, edited_policy(admin_bot))
    await post(server, file_message(name, url, stub.url, sender=PAT, conversation=PAT_PERSONAL))
    _, upload_reply = await stub.received(2)
    retire = submit_data(upload_reply.card or {})["Retire"]
    await post(server, version_submit(retire["policybot"], retire["version_id"], stub.url))
    calls = await stub.received(3)
    assert f"Retired {active.display}" in calls[2].text, calls[2].text
    assert admin_bot.storage.active_versions() == []

    await post(server, message(ROADMAP, stub.url, sender=ALICE))
    calls = await stub.received(4)
    assert "3.3" not in card_text(calls[3].card or {}) + calls[3].text


async def test_a_non_admins_retire_is_refused_and_logged(
    admin_bot: PolicyBot, server: str, stub: ConnectorStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="policybot.security")
    name = bundled(admin_bot).name
    staged = admin_bot.policies.upload(name, edited_policy(admin_bot)).version
    before = state(admin_bot)
    await post(server, version_submit("retire_document", staged.id, stub.url, sender=ALICE))
    (refused,) = await stub.received(1)
    assert refused.text == ADMIN_ONLY
    security = [r.getMessage() for r in caplog.records if r.name == "policybot.security"]
    assert any("refused policy retire" in line for line in security), security
    assert state(admin_bot) == before


async def test_the_upload_card_says_the_example_will_be_retired(
    admin_bot: PolicyBot, server: str, stub: ConnectorStub, files: FileServer
) -> None:
    url = files.add("acme.md", ACME_V1.encode())
    await post(
        server, file_message("acme.md", url, stub.url, sender=PAT, conversation=PAT_PERSONAL)
    )
    (upload_reply,) = await stub.received(1)
    assert "retires the bundled example" in card_text(upload_reply.card or {})
    assert "retires the bundled example" in upload_reply.body["summary"]
