"""The weekly digest's chart on the platforms: uploaded to the Slack digest channel through the
files upload methods (against the loopback fake Slack Web API), and inline in the Teams digest
card (against the Bot Framework connector stub); a chart Slack refuses leaves the digest
posted once."""

from __future__ import annotations

import base64
import io
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from PIL import Image

from adapters.server import build_app
from adapters.slack.outbound import CHART_FILE
from adapters.teams import cards as teams_cards
from bot import messages
from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.review.digest import ALREADY_POSTED, build_digest, post_digest, post_digest_once
from bot.store.database import Storage
from tests.fakes.bot_connector import ConnectorStub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.slack_harness import slack_server
from tests.fakes.teams_harness import local_teams
from tests.reliability import record
from tests.trend_data import WEEKS, known_weeks

#: The digest of W12 (it ends on its Sunday), with a chart of three weeks: W10 to W12.
DIGEST_END = datetime(2026, 3, 22, 12, 0, tzinfo=UTC)
CHART_WEEKS = 3
DIGEST_CHANNEL = "19:policy-team@thread.tacv2"
#: What the chart's alt text says of those three weeks (`WEEKS`, W10 to W12).
ALT_COUNTS = (
    "3 weeks from 2026-W10 to 2026-W12: 7 questions (3 answered from the policy, "
    "1 reviewed answer, 1 uncertain, 2 not covered)"
)


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


async def test_the_slack_digest_uploads_its_chart_to_the_digest_channel(
    settings: Settings,
) -> None:
    async with slack_server(settings, digest_slack_channel="CDIGEST") as slack:
        await known_weeks(slack.bot)
        digest = build_digest(
            slack.bot.storage, slack.bot.review, now=DIGEST_END, chart_weeks=CHART_WEEKS
        )
        results = await post_digest_once(slack.bot.storage, digest, slack.bot.channel_posters)
        api = slack.api
    assert results == {"slack": "posted"}
    assert [
        (w.week, w.from_policy, w.reviewed, w.uncertain, w.not_covered) for w in digest.weeks
    ] == [(week, *counts) for week, counts in list(WEEKS.items())[:CHART_WEEKS]]
    (message,) = [m for m in api["chat.postMessage"] if m["channel"] == "CDIGEST"]
    assert message["text"].startswith("policybot weekly digest")
    (asked,) = api["files.getUploadURLExternal"]
    assert asked["filename"] == CHART_FILE and ALT_COUNTS in asked["alt_txt"]
    (upload,) = api.uploads.values()
    assert upload["data"] is not None and len(upload["data"]) == int(asked["length"])
    assert png_size(upload["data"]) == (1280, 720)
    assert upload["shared"]["channel"] == "CDIGEST"
    (uploaded,) = api["files:upload"]
    # The bytes went to the upload URL Slack gave, without the bot token.
    assert uploaded["size"] == len(upload["data"])
    record(
        "Digest chart: Slack files upload",
        "pytest tests/test_digest_chart.py -k slack_digest_uploads",
        weeks=len(digest.weeks),
        png_bytes=len(upload["data"]),
        upload_calls=len(api["files.getUploadURLExternal"])
        + len(api["files:upload"])
        + len(api["files.completeUploadExternal"]),
        failures=0,
    )


async def test_a_chart_slack_refuses_leaves_the_digest_posted_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with slack_server(settings, digest_slack_channel="CDIGEST") as slack:
        await known_weeks(slack.bot)
        slack.api.overrides["files.getUploadURLExternal"] = {
            "ok": False,
            "error": "missing_scope",
        }
        digest = build_digest(
            slack.bot.storage, slack.bot.review, now=DIGEST_END, chart_weeks=CHART_WEEKS
        )
        with caplog.at_level(logging.WARNING, logger="adapters.slack.outbound"):
            first = await post_digest_once(slack.bot.storage, digest, slack.bot.channel_posters)
            again = await post_digest_once(slack.bot.storage, digest, slack.bot.channel_posters)
        api = slack.api
    assert first == {"slack": "posted"} and again == {"slack": ALREADY_POSTED}
    digests = [m for m in api["chat.postMessage"] if m["channel"] == "CDIGEST"]
    assert len(digests) == 1 and not api["files.completeUploadExternal"]
    assert "chart was not posted to Slack: missing_scope" in caplog.text
    assert "xoxb-test" not in caplog.text
    record(
        "Digest chart: Slack refuses the upload",
        "pytest tests/test_digest_chart.py -k slack_refuses",
        digest_runs=2,
        digests_posted=len(digests),
        charts_refused=1,
        failures=0,
    )


async def test_no_chart_weeks_no_upload(settings: Settings) -> None:
    async with slack_server(settings, digest_slack_channel="CDIGEST") as slack:
        digest = build_digest(slack.bot.storage, slack.bot.review, now=DIGEST_END)
        await post_digest_once(slack.bot.storage, digest, slack.bot.channel_posters)
        api = slack.api
    assert digest.weeks == () and len(api["chat.postMessage"]) == 1
    assert not api["files.getUploadURLExternal"] and not api.uploads


async def test_the_teams_digest_card_carries_the_chart_inline(
    settings: Settings, stub: ConnectorStub
) -> None:
    bot = PolicyBot.create(
        replace(
            local_teams(settings),
            digest_teams_conversation=DIGEST_CHANNEL,
            teams_service_url=stub.url,
        ),
        storage=Storage.memory(),
    )
    bot.ensure_policy()
    await known_weeks(bot)
    digest = build_digest(bot.storage, bot.review, now=DIGEST_END, chart_weeks=CHART_WEEKS)
    async with serving(build_app(bot, host=LOOPBACK)):
        assert await post_digest(digest.text, bot.channel_posters, digest.weeks) == {
            "teams": "posted"
        }
        posted = stub.calls[-1]
    assert posted.conversation_id == DIGEST_CHANNEL
    card = posted.card or {}
    (image,) = [element for element in card["body"] if element.get("type") == "Image"]
    assert image["url"].startswith("data:image/png;base64,")
    png = base64.b64decode(image["url"].split(",", 1)[1])
    assert png_size(png) == (640, 360)
    assert ALT_COUNTS in image["altText"]
    # Within what Teams takes for a whole message.
    assert len(json.dumps(card)) <= teams_cards.CARD_BUDGET
    record(
        "Digest chart: Teams card image",
        "pytest tests/test_digest_chart.py -k teams_digest_card",
        weeks=len(digest.weeks),
        png_bytes=len(png),
        card_bytes=len(json.dumps(card)),
        failures=0,
    )
    bot.storage.close()


def test_a_chart_too_large_for_a_teams_card_is_left_out_and_said() -> None:
    text = "policybot weekly digest, 2026-03-15 to 2026-03-22 (UTC)\n\nQuestions: 7 asked."
    card = teams_cards.digest_card(text, b"\x89PNG" + bytes(30_000), "a chart")
    assert not [e for e in card["body"] if e.get("type") == "Image"]
    assert messages.DIGEST_CHART_TOO_LARGE in json.dumps(card)
    small = teams_cards.digest_card(text, b"\x89PNG" + bytes(100), "a chart")
    assert [e["altText"] for e in small["body"] if e.get("type") == "Image"] == ["a chart"]


def test_the_chart_weeks_setting_is_read_and_bounded() -> None:
    assert Settings.from_env({}).digest_chart_weeks == 8
    assert Settings.from_env({"POLICYBOT_DIGEST_CHART_WEEKS": "0"}).digest_chart_weeks == 0
    for wrong in ("27", "-1", "eight"):
        with pytest.raises(ConfigError, match="POLICYBOT_DIGEST_CHART_WEEKS"):
            Settings.from_env({"POLICYBOT_DIGEST_CHART_WEEKS": wrong})
