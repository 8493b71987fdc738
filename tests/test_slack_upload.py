"""Admins upload policy versions by sending the file to the bot in a Slack DM: the change
summary, Activate / Discard / Retire, and every way an upload can go wrong leaving the policy as it was."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from adapters.slack import blocks as render
from adapters.slack.messages import file_unreadable
from adapters.slack.uploads import file_url_allowed
from bot import messages
from bot.config import Settings
from bot.core import PolicyBot
from bot.store.database import Storage
from tests.conftest import BUNDLED_POLICY
from tests.fakes.slack_harness import SlackHarness, all_text
from tests.test_policies import V1 as ACME_V1

ADMIN = "UADMIN"
DRONES = """
## 21. Drones

Owner: Legal

### 21.1 Drone footage of company sites

Employees must not fly drones over Brightwater depots, warehouses or yards, and must not post
drone footage of any Brightwater site without written approval from Legal and Security.
"""
DRONE_QUESTION = "can I post drone footage of the depot?"
#: Answered by the bundled example's section on offsites.
OFFSITE_QUESTION = "can I post pictures from the team offsite on instagram?"
ACME_POLICY = ACME_V1.encode()


@pytest.fixture
def slack_options() -> dict[str, Any]:
    return {"admins": (f"slack:{ADMIN}",), "max_upload_bytes": 200_000}


def new_version() -> bytes:
    """The bundled policy with one clause reworded and a section on drones added."""
    text = BUNDLED_POLICY.read_text(encoding="utf-8")
    old = "Brightwater does not ban social media."
    assert old in text
    return (
        text.replace(old, "Brightwater does not ban social media or messaging apps.") + DRONES
    ).encode()


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def active_ids(bot: PolicyBot) -> list[int]:
    return [v.id for v in bot.storage.active_versions()]


async def test_admin_uploads_sees_the_changes_activates_and_the_bot_answers_from_it(
    slack: SlackHarness,
) -> None:
    before = active_ids(slack.bot)
    file = slack.api.add_file(BUNDLED_POLICY.name, new_version())
    response = await slack.share_files([file], user=ADMIN)
    assert response.status_code == 200

    (summary,) = await slack.api.wait_for("chat.postMessage")
    (download,) = slack.api.downloads
    assert download["_token"] == "xoxb-test"  # the bot token, in the Authorization header
    assert summary["channel"] == "DADMIN"
    text = all_text(summary["blocks"])
    assert "1 added" in text and "1 changed" in text
    assert "21.1 Drone footage of company sites" in text and "written approval from Legal" in text
    assert "does not ban social media." in text and "or messaging apps." in text  # was / now
    assert len(summary["blocks"]) <= render.MAX_MESSAGE_BLOCKS
    assert all(len(b["text"]["text"]) <= 3000 for b in summary["blocks"] if "text" in b)
    actions = buttons(summary["blocks"])
    assert set(actions) == {render.ACTION_ACTIVATE, render.ACTION_DISCARD, render.ACTION_RETIRE}
    staged = slack.bot.storage.version(int(actions[render.ACTION_ACTIVATE]["value"]))
    assert staged.status == "staged" and "slack:UADMIN" in staged.uploaded_by
    assert active_ids(slack.bot) == before  # nothing changes before Activate

    url = slack.api.response_url("activate")
    message = {"blocks": summary["blocks"]}
    await slack.click(
        render.ACTION_ACTIVATE, str(staged.id), user=ADMIN, response_url=url, message=message
    )
    (activated,) = await slack.api.wait_for("response_url:activate")
    assert activated["replace_original"] is True
    assert "is now active" in activated["text"]
    assert not buttons(activated["blocks"])  # the buttons give way to the outcome
    assert "21.1 Drone footage" in all_text(activated["blocks"])
    assert active_ids(slack.bot) == [staged.id]

    await slack.dm(DRONE_QUESTION, user="U777")
    answers = await slack.api.wait_for("chat.postMessage", 2)
    assert answers[-1]["channel"] == "D777"
    assert "21.1" in all_text(answers[-1]["blocks"])


async def test_discard_deletes_the_staged_version(slack: SlackHarness) -> None:
    before = active_ids(slack.bot)
    await slack.share_files(
        [slack.api.add_file("extra.md", b"# Extra\n\n" + DRONES.encode())], user=ADMIN
    )
    (summary,) = await slack.api.wait_for("chat.postMessage")
    version_id = buttons(summary["blocks"])[render.ACTION_DISCARD]["value"]
    url = slack.api.response_url("discard")
    await slack.click(render.ACTION_DISCARD, version_id, user=ADMIN, response_url=url)
    (discarded,) = await slack.api.wait_for("response_url:discard")
    assert "Discarded" in discarded["text"]
    assert int(version_id) not in [v.id for v in slack.bot.storage.versions()]
    assert active_ids(slack.bot) == before


async def test_a_non_admin_is_refused_and_nothing_is_downloaded(slack: SlackHarness) -> None:
    versions = len(slack.bot.storage.versions())
    await slack.share_files([slack.api.add_file("policy.md", new_version())], user="U555")
    (reply,) = await slack.api.wait_for("chat.postMessage")
    assert reply["channel"] == "D555" and "only policy admins" in reply["text"]
    assert slack.api.downloads == []
    assert len(slack.bot.storage.versions()) == versions


async def test_a_non_admin_sending_several_files_is_refused_once(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="policybot.security")
    versions = len(slack.bot.storage.versions())
    files = [slack.api.add_file(f"policy-{n}.md", new_version()) for n in range(3)]
    await slack.share_files(files, user="U555")
    await slack.dm("help", user="U555")  # a later message: answered once the files were
    posts = await slack.api.wait_for("chat.postMessage", 2)
    refusals = [p for p in posts if messages.ADMIN_ONLY in p["text"]]
    assert len(refusals) == 1 and len(posts) == 2
    security = [r.getMessage() for r in caplog.records if r.name == "policybot.security"]
    assert len(security) == 1 and "refused policy upload" in security[0]
    assert slack.api.downloads == []
    assert len(slack.bot.storage.versions()) == versions


async def test_a_non_admin_cannot_activate_or_discard(slack: SlackHarness) -> None:
    before = active_ids(slack.bot)
    await slack.share_files([slack.api.add_file(BUNDLED_POLICY.name, new_version())], user=ADMIN)
    (summary,) = await slack.api.wait_for("chat.postMessage")
    version_id = buttons(summary["blocks"])[render.ACTION_ACTIVATE]["value"]
    for action_id in (render.ACTION_ACTIVATE, render.ACTION_DISCARD):
        await slack.click(
            action_id, version_id, user="U555", response_url=slack.api.response_url(action_id)
        )
        (note,) = await slack.api.wait_for("response_url:" + action_id)
        assert "only policy admins" in note["text"] and note["replace_original"] is False
    assert active_ids(slack.bot) == before
    assert slack.bot.storage.version(int(version_id)).status == "staged"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("policy.pdf", b"%PDF-1.7 this is not really a pdf", "policy.pdf: the pdf cannot be read"),
        ("policy.docx", b"PK\x03\x04 broken zip", "policy.docx: the word file cannot be opened"),
        ("empty.md", b"", "empty.md is empty"),
        ("notes.xlsx", b"spreadsheet", "unsupported file type .xlsx"),
    ],
)
async def test_bad_files_get_the_core_message_and_change_nothing(
    slack: SlackHarness, name: str, data: bytes, expected: str
) -> None:
    before = [(v.id, v.status) for v in slack.bot.storage.versions()]
    await slack.share_files([slack.api.add_file(name, data)], user=ADMIN)
    (reply,) = await slack.api.wait_for("chat.postMessage")
    assert expected in reply["text"].lower()
    assert not buttons(reply["blocks"])
    assert [(v.id, v.status) for v in slack.bot.storage.versions()] == before


async def test_too_big_by_slacks_word_is_refused_without_downloading(slack: SlackHarness) -> None:
    before = active_ids(slack.bot)
    await slack.share_files([slack.api.add_file("huge.md", b"# x", size=5_000_000)], user=ADMIN)
    (reply,) = await slack.api.wait_for("chat.postMessage")
    assert "larger than the" in reply["text"] and "MB upload limit" in reply["text"]
    assert slack.api.downloads == []
    assert active_ids(slack.bot) == before


async def test_too_big_while_streaming_is_cut_off_and_refused(slack: SlackHarness) -> None:
    before = [(v.id, v.status) for v in slack.bot.storage.versions()]
    # Slack's size is wrong (say, the file was replaced): the limit holds while downloading.
    file = slack.api.add_file("big.md", b"# Big\n\n" + b"word " * 100_000, size=10)
    await slack.share_files([file], user=ADMIN)
    (reply,) = await slack.api.wait_for("chat.postMessage")
    assert "larger than the" in reply["text"]
    assert len(slack.api.downloads) == 1
    assert [(v.id, v.status) for v in slack.bot.storage.versions()] == before


async def test_a_sign_in_page_instead_of_the_file_names_the_missing_scope(
    slack: SlackHarness,
) -> None:
    slack.api.token = "xoxb-other"  # the file host does not accept the bot's token
    await slack.share_files([slack.api.add_file("policy.md", new_version())], user=ADMIN)
    (reply,) = await slack.api.wait_for("chat.postMessage")
    assert "files:read" in reply["text"]


async def test_file_shared_event_is_handled_once_with_the_message(slack: SlackHarness) -> None:
    file = slack.api.add_file(BUNDLED_POLICY.name, new_version())
    event = {"type": "file_shared", "file_id": file["id"], "user_id": ADMIN, "channel_id": "DADMIN"}
    await slack.event(event)
    (summary,) = await slack.api.wait_for("chat.postMessage")
    assert "1 added" in all_text(summary["blocks"])
    assert slack.api["files.info"][0]["file"] == file["id"]
    # The same file as a file_share message (Slack sends both when subscribed to both).
    await slack.share_files([file], user=ADMIN)
    await slack.dm("help", user=ADMIN)  # a later message, so the file_share was handled
    await slack.api.wait_for("chat.postMessage", 2)
    assert len(slack.api.downloads) == 1 and len(slack.api["chat.postMessage"]) == 2


async def test_a_file_stub_in_the_message_is_looked_up_with_files_info(
    slack: SlackHarness,
) -> None:
    file = slack.api.add_file(BUNDLED_POLICY.name, new_version())
    await slack.share_files([{"id": file["id"], "file_access": "check_file_info"}], user=ADMIN)
    (summary,) = await slack.api.wait_for("chat.postMessage")
    assert "1 added" in summary["text"] and len(slack.api.downloads) == 1


async def test_a_file_slack_will_not_describe_is_refused_with_its_reason(
    slack: SlackHarness,
) -> None:
    await slack.share_files([{"id": "FGONE", "file_access": "check_file_info"}], user=ADMIN)
    (reply,) = await slack.api.wait_for("chat.postMessage")
    expected = messages.could_not_download("that file", file_unreadable("file_not_found"))
    assert expected in reply["text"]
    assert slack.api.downloads == []


async def test_the_same_content_again_makes_no_new_version(slack: SlackHarness) -> None:
    await slack.share_files(
        [slack.api.add_file(BUNDLED_POLICY.name, BUNDLED_POLICY.read_bytes())], user=ADMIN
    )
    (reply,) = await slack.api.wait_for("chat.postMessage")
    assert "already stored" in reply["text"] and "0 changed" in reply["text"]
    # It is the active version: nothing to activate or discard, only the document to retire.
    assert set(buttons(reply["blocks"])) == {render.ACTION_RETIRE}


def test_the_bot_token_goes_only_to_slack_or_the_configured_api_host() -> None:
    api = "http://127.0.0.1:5000/api/"
    assert file_url_allowed("https://files.slack.com/files-pri/T1-F1/download/p.docx", api)
    assert file_url_allowed("http://127.0.0.1:5000/files/F1/download/p.md", api)
    assert not file_url_allowed("http://127.0.0.1:6000/files/F1/p.md", api)
    assert not file_url_allowed("https://files.slack.com.evil.example/p.md", api)
    assert not file_url_allowed("http://files.slack.com/p.md", api)  # not over https


def test_a_long_change_summary_is_cut_to_slack_limits(settings: Settings) -> None:
    bot = PolicyBot.create(settings, storage=Storage.memory())
    sections = [
        f"## {n}. Topic {n}\n\nRule {n}: " + "employees must keep records. " * 60
        for n in range(1, 61)
    ]
    bot.policies.upload("long.md", "\n\n".join(sections).encode(), activate=True)
    changed = [s.replace("keep records", "keep written records") for s in sections]
    result = bot.policies.upload("long.md", "\n\n".join(changed).encode())
    blocks = render.upload_blocks(result)
    assert len(blocks) <= render.MAX_MESSAGE_BLOCKS
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if "text" in b)
    assert f"policybot policy diff {result.version.reference}" in all_text(blocks)
    assert set(buttons(blocks)) == {
        render.ACTION_ACTIVATE,
        render.ACTION_DISCARD,
        render.ACTION_RETIRE,
    }
    bot.storage.close()


async def ask_in_dm(slack: SlackHarness, question: str, posts_before: int) -> dict[str, Any]:
    await slack.dm(question, user="U777")
    posts = await slack.api.wait_for("chat.postMessage", posts_before + 1)
    answer: dict[str, Any] = posts[-1]
    assert answer["channel"] == "D777"
    return answer


async def test_an_admins_retire_takes_the_document_out_of_answering(slack: SlackHarness) -> None:
    answered = await ask_in_dm(slack, OFFSITE_QUESTION, 0)
    assert "Offsites, parties" in all_text(answered["blocks"])  # from the bundled policy
    await slack.share_files([slack.api.add_file(BUNDLED_POLICY.name, new_version())], user=ADMIN)
    (_, summary) = await slack.api.wait_for("chat.postMessage", 2)
    actions = buttons(summary["blocks"])
    assert set(actions) == {render.ACTION_ACTIVATE, render.ACTION_DISCARD, render.ACTION_RETIRE}
    assert actions[render.ACTION_RETIRE]["confirm"]["confirm"]["text"] == "Retire"

    url = slack.api.response_url("retire")
    message = {"blocks": summary["blocks"]}
    version_id = actions[render.ACTION_RETIRE]["value"]
    await slack.click(
        render.ACTION_RETIRE, version_id, user=ADMIN, response_url=url, message=message
    )
    (retired,) = await slack.api.wait_for("response_url:retire")
    assert retired["replace_original"] is True and "Retired" in retired["text"]
    assert not buttons(retired["blocks"])
    assert active_ids(slack.bot) == []

    unanswered = await ask_in_dm(slack, OFFSITE_QUESTION, 2)
    assert "Offsites, parties" not in all_text(unanswered["blocks"])
    assert not unanswered["text"].startswith(answered["text"][:40])


async def test_a_non_admins_retire_is_refused_and_logged(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="policybot.security")
    before = active_ids(slack.bot)
    await slack.share_files([slack.api.add_file(BUNDLED_POLICY.name, new_version())], user=ADMIN)
    (summary,) = await slack.api.wait_for("chat.postMessage")
    version_id = buttons(summary["blocks"])[render.ACTION_RETIRE]["value"]
    url = slack.api.response_url("retire")
    await slack.click(render.ACTION_RETIRE, version_id, user="U555", response_url=url)
    (note,) = await slack.api.wait_for("response_url:retire")
    assert "only policy admins" in note["text"] and note["replace_original"] is False
    security = [r.getMessage() for r in caplog.records if r.name == "policybot.security"]
    assert any("refused policy retire" in line and "U555" in line for line in security), security
    assert active_ids(slack.bot) == before


async def test_the_upload_message_says_the_example_will_be_retired(slack: SlackHarness) -> None:
    await slack.share_files([slack.api.add_file("acme.md", ACME_POLICY)], user=ADMIN)
    (summary,) = await slack.api.wait_for("chat.postMessage")
    assert "retires the bundled example" in summary["text"]
    assert "retires the bundled example" in all_text(summary["blocks"])
