"""Commands run from cron or a terminal (`digest`, `questions answer`) send through Slack when
its settings are present, though the Slack app is not running in that process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner, Result

from bot.cli import main
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.store.database import Storage
from tests.fakes.slack_api import FakeSlackApi, fake_slack_api

DOG = ["can I bring my dog to the office", "are pets allowed at the office?"]


async def ask_in_slack(db: str) -> int:
    """Two employees asked the bot in their Slack DMs; returns their question group."""
    bot = PolicyBot.create(Settings(db_path=db), storage=Storage.open(db))
    bot.ensure_policy()
    for n, text in enumerate(DOG, start=1):
        await bot.ask(IncomingQuestion(text, "slack", f"U{n}", f"D{n}"))
    (group,) = bot.review.queue()
    bot.storage.close()
    return group.id


async def cli(db: str, api: FakeSlackApi, *args: str, **env: str) -> Result:
    """The command in a thread of its own (it runs its own event loop), with Slack settings
    pointing at the fake API served by this test's loop."""
    environment = {
        "POLICYBOT_DB": "",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": api.url,
        **env,
    }
    return await asyncio.to_thread(CliRunner().invoke, main, ["--db", db, *args], env=environment)


async def test_digest_posts_to_the_slack_digest_channel(tmp_path: Path) -> None:
    db = str(tmp_path / "digest.db")
    await ask_in_slack(db)
    async with fake_slack_api() as api:
        result = await cli(db, api, "digest", POLICYBOT_DIGEST_SLACK_CHANNEL="CDIGEST")
    assert result.exit_code == 0, result.output
    assert "slack: posted" in result.output
    (post,) = api["chat.postMessage"]
    assert post["channel"] == "CDIGEST" and post["_token"] == "xoxb-test"
    assert "weekly digest" in post["text"] and "2 asked" in post["text"]
    assert DOG[0] in post["text"]  # the top open group


async def test_digest_without_a_channel_posts_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "digest.db")
    await ask_in_slack(db)
    async with fake_slack_api() as api:
        result = await cli(db, api, "digest")
    assert result.exit_code == 0 and "weekly digest" in result.output
    assert api.total_calls == 0


async def test_questions_answer_delivers_to_slack_askers(tmp_path: Path) -> None:
    db = str(tmp_path / "answer.db")
    group_id = await ask_in_slack(db)
    answer = "Only assistance dogs are allowed in the offices."
    async with fake_slack_api() as api:
        result = await cli(db, api, "questions", "answer", str(group_id), answer)
    assert result.exit_code == 0, result.output
    assert "2 sent, 0 pending" in result.output
    sent = {p["channel"]: p["text"] for p in api["chat.postMessage"]}
    assert set(sent) == {"D1", "D2"}
    for channel, question in zip(("D1", "D2"), DOG, strict=True):
        assert answer in sent[channel] and question in sent[channel]


async def test_questions_answer_keeps_deliveries_slack_refuses(tmp_path: Path) -> None:
    db = str(tmp_path / "answer.db")
    group_id = await ask_in_slack(db)
    async with fake_slack_api() as api:
        api.overrides["chat.postMessage"] = {"ok": False, "error": "channel_not_found"}
        result = await cli(db, api, "questions", "answer", str(group_id), "No pets, sorry.")
    assert result.exit_code == 0, result.output
    assert "0 sent, 2 pending (2 failed, kept for retry)" in result.output
    storage = Storage.open(db)
    assert len(storage.pending_deliveries(group_id)) == 2
    storage.close()
