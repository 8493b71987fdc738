"""Policy versions through the one core path: upload, change summary, activate, roll back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docx
import pytest

from bot.changes import compare_clauses
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Actor, Block, Clause, IncomingQuestion, PolicyError
from bot.policies import ACTIVATE, ADMIN_ONLY, DISCARD, NotAuthorized, PolicyLibrary, UploadResult
from bot.reading.ingest import READERS
from bot.reading.pdf import read_pdf
from bot.reading.shared import ReadLimits
from bot.store.database import Storage
from tests.documents import docx_bytes, make_pdf

V1 = """# Acme Social Media Policy

## 1. Scope

This policy applies to every employee who posts about Acme on any social network, personal or official.

## 2. Confidential information

### 2.1 Customer data

Employees must not share non-public information about customers, shipments, prices or contracts on any account.

### 2.2 Product launches

Employees may mention upcoming product launches once Marketing has announced them publicly on our website.

## 3. Personal devices

Employees may read work email on a personal phone only with the company's device management app installed.
"""

V2 = (
    V1.replace(
        "Employees may mention upcoming product launches once Marketing has announced them "
        "publicly on our website.",
        "Employees must never mention upcoming product launches before Marketing has announced "
        "them publicly on our website.",
    ).split("## 3. Personal devices")[0]
    + """## 4. Livestreaming

Employees must not livestream video from any warehouse, depot or customer site without written approval from Public Relations.
"""
)

LIVESTREAM = "may I livestream video from the warehouse?"
LAUNCHES = "can I mention an upcoming product launch?"


@pytest.fixture
def bot(settings: Settings) -> Iterator[PolicyBot]:
    """A core with Acme's policy v1 active and nothing else."""
    policy_bot = PolicyBot.create(
        replace(settings, admins=("slack:U0ADMIN", "teams:0f8fad5b-d9cb-469f-a165-70867728950e")),
        storage=Storage.memory(),
    )
    policy_bot.policies.upload("acme.md", V1.encode(), uploaded_by="U0ADMIN", activate=True)
    yield policy_bot
    policy_bot.storage.close()


async def ask(bot: PolicyBot, text: str) -> tuple[bool, list[str]]:
    answer = await bot.ask(IncomingQuestion(text))
    return answer.answered, [c.section for c in answer.citations]


async def test_upload_stages_a_version_with_its_provenance_and_a_change_summary(
    bot: PolicyBot,
) -> None:
    [v1] = bot.storage.active_versions()
    result = bot.policies.upload("acme.md", V2.encode(), uploaded_by="U0ADMIN")
    assert result.created and result.activation is None
    version = result.version
    assert (version.status, version.source_name, version.uploaded_by) == (
        "staged",
        "acme.md",
        "U0ADMIN",
    )
    assert len(version.content_hash) == 64 and version.uploaded_at
    changes = result.changes
    assert changes.base is not None and changes.base.id == v1.id
    assert [c.reference for c in changes.added] == ["4 Livestreaming"]
    assert [c.reference for c in changes.removed] == ["3 Personal devices"]
    [changed] = changes.changed
    assert changed.new.reference == "2.2 Product launches"
    assert changed.old.text.startswith("Employees may mention")
    assert changed.new.text.startswith("Employees must never mention")
    assert changes.unchanged == 2
    text = result.as_text()
    assert "1 added, 1 removed, 1 changed, 2 unchanged" in text
    assert "old: “Employees may mention" in text and "new: “Employees must never" in text
    assert "[-may-] {+must never+}" in changed.word_diff()
    # Staged is not active: answers still come from v1.
    assert [v.id for v in bot.storage.active_versions()] == [v1.id]
    assert await ask(bot, LIVESTREAM) == (False, [])


def test_same_content_again_makes_no_new_version(bot: PolicyBot) -> None:
    before = bot.storage.versions()
    again = bot.policies.upload("acme.md", V1.encode(), uploaded_by="someone-else")
    assert not again.created and again.version.id == before[0].id
    assert bot.storage.versions() == before
    assert not again.changes.has_changes and again.changes.unchanged == 4
    assert "no new version" in again.as_text()


async def test_a_server_upload_is_read_in_a_child_process_and_stored_like_any_other(
    bot: PolicyBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_here: list[str] = []
    markdown = READERS[".md"]

    def recording_reader(
        data: bytes, limits: ReadLimits
    ) -> tuple[dict[str, str | list[str]], list[Block]]:
        read_here.append(threading.current_thread().name)
        return markdown(data, limits)

    monkeypatch.setitem(READERS, ".md", recording_reader)
    result = await bot.policies.upload_in_background("acme.md", V2.encode(), uploaded_by="U1")
    assert result.created and result.changes.has_changes
    assert read_here == []  # the child process has its own readers
    assert bot.storage.version(result.version.id).status == "staged"
    before = bot.storage.versions()
    with pytest.raises(PolicyError, match="empty"):
        await bot.policies.upload_in_background("acme.md", b"   ", uploaded_by="U1")
    assert bot.storage.versions() == before  # a failed upload stores nothing
    bot.policies.upload("acme.md", V1.encode() + b"\n", uploaded_by="U1")
    assert read_here == []  # every upload from outside is read in a child, not only servers'


async def test_a_server_upload_on_a_database_file_is_stored_and_compared_in_a_child_process(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Storing and comparing a large upload is seconds of Python; on a thread of the server it
    # held the GIL the event loop needs for Slack's acknowledgements. A spy on this process's
    # store_upload sees whether it ran here: the spawned child imports its own.
    storage = Storage.open(tmp_path / "policybot.db")
    bot = PolicyBot.create(replace(settings, admins=("slack:U0ADMIN",)), storage=storage)
    try:
        bot.policies.upload("acme.md", V1.encode(), uploaded_by="U0ADMIN", activate=True)
        stored_here: list[str] = []
        store_upload = PolicyLibrary.store_upload

        def spy(self: PolicyLibrary, *args: Any, **kwargs: Any) -> UploadResult:
            stored_here.append(threading.current_thread().name)
            return store_upload(self, *args, **kwargs)

        monkeypatch.setattr(PolicyLibrary, "store_upload", spy)
        [active] = storage.active_versions()
        result = await bot.policies.upload_in_background("acme.md", V2.encode(), uploaded_by="U1")
        assert stored_here == []
        assert result.created and result.changes.has_changes
        assert storage.version(result.version.id).status == "staged"
        assert [v.id for v in storage.active_versions()] == [active.id]
        # A refusal raised in the child arrives as the same message, and stores nothing.
        before = storage.versions()
        with pytest.raises(PolicyError, match="has the same content as"):
            await bot.policies.upload_in_background("other.md", V2.encode(), uploaded_by="U1")
        assert storage.versions() == before
        assert stored_here == []
    finally:
        await bot.aclose()
        storage.close()


def test_change_summary_limit_says_how_many_were_left_out(bot: PolicyBot) -> None:
    result = bot.policies.upload("acme.md", V2.encode())
    text = result.changes.as_text(limit=1)
    assert "… and 2 more" in text and f"policy diff {result.version.reference}" in text


def test_clause_matching_pairs_moved_and_reworded_clauses() -> None:
    old = bot_clauses(V1)
    renumbered = bot_clauses(V1.replace("## 3. Personal devices", "## 5. Personal devices"))
    added, removed, changed, unchanged = compare_clauses(old, renumbered)
    assert (added, removed, unchanged) == ([], [], 3)
    assert [(c.old.section, c.new.section) for c in changed] == [("3", "5")]
    assert compare_clauses(old, old) == ([], [], [], 4)


def bot_clauses(text: str) -> list[Clause]:
    from bot.reading.ingest import read_policy

    return list(read_policy("acme.md", text.encode()).clauses)


async def test_activation_rechecks_open_questions_and_rollback_restores_answers(
    bot: PolicyBot,
) -> None:
    [v1] = bot.storage.active_versions()
    assert await ask(bot, LAUNCHES) == (True, ["2.2"])
    assert await ask(bot, LIVESTREAM) == (False, [])
    rows = bot.open_questions()
    [open_question] = rows
    staged = bot.policies.upload("acme.md", V2.encode(), uploaded_by="U0ADMIN").version

    activation = bot.policies.activate(staged.id, by="U0ADMIN")
    assert activation.changed and activation.previous and activation.previous.id == v1.id
    assert activation.rechecked == 1 and activation.now_answered == (open_question.id,)
    row = bot.storage.question(int(open_question.id))
    assert row.status == "open"  # still the policy team's to resolve, now flagged
    assert row.now_answered_version == staged.id
    answer = await bot.ask(IncomingQuestion(LIVESTREAM))
    assert answer.answered and [c.section for c in answer.citations] == ["4"]
    # Flagged with the clauses the answer cites, as `ask` logs them: one retrieval, one choice.
    assert row.now_answered_citations == [c.as_logged() for c in answer.citations]

    back = bot.policies.rollback("acme", by="U0ADMIN")
    assert back.version.id == v1.id and back.version.status == "active"
    assert bot.storage.version(staged.id).status == "retired"
    assert await ask(bot, LIVESTREAM) == (False, [])
    assert bot.storage.question(int(open_question.id)).now_answered_version is None
    kinds = [(e["version_id"], e["kind"]) for e in bot.policies.history("acme")]
    assert kinds == [(v1.id, "activate"), (staged.id, "activate"), (v1.id, "rollback")]


def test_rollback_walks_back_through_activations_and_any_version_can_be_reactivated(
    bot: PolicyBot,
) -> None:
    [v1] = bot.storage.active_versions()
    v2 = bot.policies.upload("acme.md", V2.encode(), activate=True).version
    v3 = bot.policies.upload("acme.md", V2.replace("written", "prior").encode(), activate=True)
    assert bot.policies.rollback().version.id == v2.id
    assert bot.policies.rollback().version.id == v1.id
    with pytest.raises(PolicyError, match="no earlier active version"):
        bot.policies.rollback()
    again = bot.policies.activate(v3.version.id)
    assert again.version.id == v3.version.id and again.previous and again.previous.id == v1.id
    assert not bot.policies.activate(v3.version.id).changed
    # The diff of the active version shows what its activation changed.
    base = bot.policies.diff(v3.version.id).base
    assert base is not None and base.id == v1.id


def test_discard_removes_only_staged_versions(bot: PolicyBot) -> None:
    [v1] = bot.storage.active_versions()
    staged = bot.policies.upload("acme.md", V2.encode()).version
    assert bot.policies.diff().target.id == staged.id  # the newest staged by default
    bot.policies.discard(staged.id)
    assert [v.id for v in bot.storage.versions()] == [v1.id]
    assert bot.storage.clauses([staged.id]) == []
    with pytest.raises(PolicyError, match="only a staged version"):
        bot.policies.discard(v1.id)
    with pytest.raises(PolicyError, match="No version is staged"):
        bot.policies.diff()
    with pytest.raises(PolicyError, match="no policy version 999"):
        bot.policies.activate(999)


async def test_documents_side_by_side_and_answers_name_the_document(bot: PolicyBot) -> None:
    devices = docx.Document()
    devices.add_heading("Acme Device Policy", 0)
    devices.add_heading("7. Lost phones", 1)
    devices.add_paragraph(
        "Report a lost or stolen phone that holds company email to the IT service desk "
        "within one hour so that it can be wiped remotely."
    )
    result = bot.policies.upload("devices.docx", docx_bytes(devices), activate=True)
    assert result.changes.base is None and "first version" in result.changes.as_text()
    assert {v.document for v in bot.storage.active_versions()} == {"acme", "devices"}

    answer = await bot.ask(IncomingQuestion("I lost my phone with company email on it"))
    assert answer.answered and answer.citations[0].section == "7"
    assert answer.citations[0].document_title == "Acme Device Policy"
    assert answer.as_json()["citations"][0]["document_title"] == "Acme Device Policy"
    assert "Acme Device Policy" in answer.plain_text()
    assert "devices v" in answer.policy_version
    # Rolling one document back leaves the other alone.
    with pytest.raises(PolicyError, match="Name the document"):
        bot.policies.rollback()
    with pytest.raises(PolicyError, match="no earlier active version"):
        bot.policies.rollback("devices")


def test_admins_are_recognised_and_others_refused_politely(bot: PolicyBot) -> None:
    assert bot.is_admin(Actor("slack", "U0ADMIN"))
    aad = "0F8FAD5B-D9CB-469F-A165-70867728950E"
    assert bot.is_admin(Actor("teams", aad))  # AAD ids in any case
    assert not bot.is_admin(Actor("slack", "U0SOMEONE")) and not bot.is_admin(Actor("slack", ""))
    # An id counts on its own platform only: a Slack id claimed in Teams, and the reverse.
    assert not bot.is_admin(Actor("teams", "U0ADMIN")) and not bot.is_admin(Actor("slack", aad))
    assert not bot.is_admin(Actor("", "U0ADMIN"))
    bot.policies.authorize(Actor("slack", "U0ADMIN"))
    with pytest.raises(NotAuthorized) as refused:
        bot.policies.authorize(Actor("teams", "U0ADMIN"))
    assert str(refused.value) == ADMIN_ONLY and "Sorry" in ADMIN_ONLY


def test_settle_activates_or_discards_for_admins_only(
    bot: PolicyBot, caplog: pytest.LogCaptureFixture
) -> None:
    """The one path behind every platform's Activate / Discard buttons."""
    admin = Actor("teams", "0f8fad5b-d9cb-469f-a165-70867728950e", "Pat Policy")
    first = bot.policies.upload("acme.md", V2.encode(), uploaded_by="U0ADMIN").version
    with pytest.raises(NotAuthorized):
        bot.policies.settle(first.id, ACTIVATE, Actor("slack", "U0SOMEONE"))
    assert "refused policy activate: platform=slack who=U0SOMEONE" in caplog.text
    with pytest.raises(PolicyError, match="no longer matches a policy version"):
        bot.policies.settle(None, ACTIVATE, admin)
    activated = bot.policies.settle(first.id, ACTIVATE, admin)
    assert activated.version.id == first.id and "is now active" in activated.outcome
    assert bot.policies.history("acme")[-1]["activated_by"] == f"Pat Policy (teams:{admin.user_id})"
    with pytest.raises(PolicyError, match="only a staged version"):
        bot.policies.settle(first.id, DISCARD, admin)  # active now: it stays for rollback
    staged = bot.policies.upload("acme.md", V1.encode() + b"\nMore.\n").version
    discarded = bot.policies.settle(staged.id, DISCARD, Actor("slack", "U0ADMIN"))
    assert discarded.outcome.startswith("Discarded") and "unchanged" in discarded.outcome
    assert staged.id not in [v.id for v in bot.storage.versions()]


def _corrupt_pdf() -> bytes:
    data = make_pdf([["1. Scope", "Employees must do things properly at all times, always."]])
    return data[: len(data) // 2]


def _password_docx() -> bytes:
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024)


BAD_UPLOADS = [
    ("acme.md", b"", "is empty"),
    ("acme.docx", b"   \n", "is empty"),
    ("acme.xlsx", b"PK\x03\x04 a spreadsheet", "unsupported file type .xlsx"),
    ("acme", V1.encode(), "unsupported file type"),
    ("acme.md", b"x" * 5000, "larger than the"),
    ("acme.docx", b"PK\x03\x04 this is not a word file", "damaged"),
    ("acme.docx", _password_docx(), "password-protected"),
    ("acme.pdf", _corrupt_pdf(), "damaged"),
    ("acme.pdf", make_pdf([[]]), "no text layer"),
    ("acme.md", b"# Only a title\n", "no policy text"),
    ("acme.md", "## 1. Scope\n\nCafé rules apply to everyone.".encode("latin-1"), "not UTF-8"),
]


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    BAD_UPLOADS,
    ids=[
        "empty",
        "blank",
        "unsupported",
        "no-suffix",
        "too-large",
        "corrupt-docx",
        "password-docx",
        "corrupt-pdf",
        "scanned-pdf",
        "no-clauses",
        "not-utf8",
    ],
)
async def test_bad_uploads_are_refused_and_change_nothing(
    settings: Settings, filename: str, data: bytes, message: str
) -> None:
    bot = PolicyBot.create(replace(settings, max_upload_bytes=4096), storage=Storage.memory())
    bot.policies.upload("acme.md", V1.encode(), activate=True)
    before = bot.storage.versions()
    with pytest.raises(PolicyError, match=message) as refused:
        bot.policies.upload(filename, data, uploaded_by="U0ADMIN", activate=True)
    assert filename.split(".")[0] in str(refused.value)  # the message names the file
    assert bot.storage.versions() == before
    assert await ask(bot, LAUNCHES) == (True, ["2.2"])


def test_corrupt_pdf_message_is_for_people() -> None:
    with pytest.raises(PolicyError) as refused:
        read_pdf(_corrupt_pdf())
    assert "Export it again" in str(refused.value) and "Traceback" not in str(refused.value)


async def test_a_recheck_flags_a_question_with_the_clauses_its_answer_cites(
    settings: Settings,
) -> None:
    """The re-check retrieves as `ask` does and keeps the clauses the answer cites, not every
    clause retrieval ranked."""
    question = "may I tweet about our quarterly revenue?"
    unsure = PolicyBot.create(replace(settings, min_confidence=1.0), storage=Storage.memory())
    unsure.ensure_policy()
    assert not (await unsure.ask(IncomingQuestion(question))).answered
    bot = PolicyBot.create(settings, storage=unsure.storage)
    rechecked, [question_id] = bot.policies.recheck_open_questions()
    answer = await bot.ask(IncomingQuestion(question))
    assert rechecked == 1 and answer.answered and answer.citations
    flagged = bot.storage.question(question_id).now_answered_citations
    assert flagged == [c.as_logged() for c in answer.citations]
    bot.storage.close()
