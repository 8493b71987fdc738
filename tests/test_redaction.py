"""Secrets out of reprs and log records: Settings and LLMConfig show none, and the bot's log
filter scrubs every configured secret, in its usual forms, from any record."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from click.testing import CliRunner

from bot.answering.grounded import GroundedAnswerer
from bot.answering.llm import ChatClient, LLMConfig
from bot.answering.outcome import Outcome
from bot.cli import main as cli_main
from bot.config import SECRET_FIELDS, Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.redaction import REDACTED, RedactingFilter, Redactor, redact_logs, without_credentials
from bot.store.database import Storage

PASSWORD = "pa:ss@w/rd+9"
BASE_URL = f"https://proxy-user:{quote(PASSWORD, safe='')}@llm.example.com/v1"
SECRETS = {
    "slack_bot_token": "xoxb-1234-5678-abcdefABCDEF",
    "slack_app_token": "xapp-1-A01-234-0a1b2c3d4e5f",
    "slack_signing_secret": "8f742231b10e8888abcd99yyyzzz85a5",
    "microsoft_app_password": "Tm~8Q~app.password_+/=",
    "openai_api_key": "sk-proj/Zx9+Qw7=Lm3_Rt5",
    "admin_token": "admin-token-7c1e0b5a9f3d4e2a8b6c",
    "entra_client_secret": "Qx8~entra.client-secret_9ZpT",
    "slack_signin_client_secret": "5be1c0ffee5ecret0f5lack5ign1n",
}


def configured() -> Settings:
    # Settings' fields differ in type, so mypy cannot check **SECRETS against them; each is a
    # str field (test_every_secret_field_is_named checks the names).
    secrets: dict[str, Any] = SECRETS
    return Settings(openai_base_url=BASE_URL, llm_model="m", **secrets)


def test_every_secret_field_is_named() -> None:
    assert set(SECRET_FIELDS) == set(SECRETS)


def test_settings_repr_and_str_hold_no_secret_but_say_which_are_set() -> None:
    settings = configured()
    for shown in (repr(settings), str(settings), f"{settings}", repr([settings])):
        assert not [name for name, value in SECRETS.items() if value in shown]
        assert PASSWORD not in shown and quote(PASSWORD, safe="") not in shown
        assert "slack_bot_token='<set>'" in shown and "llm.example.com" in shown
    assert "slack_bot_token=''" in repr(Settings())


def test_llm_config_repr_holds_neither_key_nor_url_credentials() -> None:
    config = LLMConfig.from_settings(configured())
    shown = repr(config)
    assert SECRETS["openai_api_key"] not in shown and quote(PASSWORD, safe="") not in shown
    assert config.endpoint == "https://llm.example.com/v1/chat/completions"
    assert config.basic_auth is not None


def test_redactor_scrubs_each_secret_in_its_usual_forms() -> None:
    redactor = Redactor.of(configured())
    key = SECRETS["openai_api_key"]
    basic = base64.b64encode(f"proxy-user:{PASSWORD}".encode()).decode()
    text = (
        f"Bearer {key} | {quote(key, safe='')} | {quote_plus(key)} | Basic {basic} | "
        f"{BASE_URL} | {PASSWORD} | {SECRETS['microsoft_app_password']} | nothing secret"
    )
    assert redactor.scrub(text) == (
        f"Bearer {REDACTED} | {REDACTED} | {REDACTED} | Basic {REDACTED} | "
        f"https://{REDACTED}@llm.example.com/v1 | {REDACTED} | {REDACTED} | nothing secret"
    )
    assert redactor.scrub_row({"notes": [f"x {key}"], "n": 3}) == {
        "notes": [f"x {REDACTED}"],
        "n": 3,
    }
    # Nothing configured, or too short to be told from ordinary words: left alone.
    assert Redactor.of(Settings()).scrub("Bearer abc") == "Bearer abc"
    assert Redactor(["abc", ""]).scrub("abc def") == "abc def"
    assert without_credentials(BASE_URL) == "https://llm.example.com/v1"


def test_the_log_filter_scrubs_messages_arguments_and_tracebacks_of_any_logger() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    settings = configured()
    redact_logs(Redactor.of(settings), [handler])
    redact_logs(Redactor.of(settings), [handler])  # configured again: one filter, not two
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    library = logging.getLogger("some.library")
    library.addHandler(handler)
    library.propagate = False
    library.setLevel(logging.DEBUG)
    try:
        token = SECRETS["slack_bot_token"]
        library.warning("calling with token %s", token)
        library.info("header Authorization: Bearer %s", SECRETS["openai_api_key"])
        try:
            raise RuntimeError(f"refused: {SECRETS['admin_token']}")
        except RuntimeError:
            library.exception("request failed for %s", BASE_URL)
    finally:
        library.removeHandler(handler)
        library.propagate = True
        library.setLevel(logging.NOTSET)
    written = stream.getvalue()
    assert written.count(REDACTED) >= 4 and "RuntimeError: refused: [redacted]" in written
    assert not [name for name, value in SECRETS.items() if value in written]
    assert PASSWORD not in written and quote(PASSWORD, safe="") not in written


def test_by_default_the_filter_goes_on_the_root_handlers_and_the_last_resort() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    last_resort = logging.lastResort
    try:
        redact_logs(Redactor.of(configured()))
        assert any(isinstance(f, RedactingFilter) for f in handler.filters)
        assert last_resort is not None
        assert any(isinstance(f, RedactingFilter) for f in last_resort.filters)
    finally:
        root.removeHandler(handler)
        if last_resort is not None:
            for f in [f for f in last_resort.filters if isinstance(f, RedactingFilter)]:
                last_resort.removeFilter(f)


async def test_an_unexpected_llm_client_error_is_scrubbed_before_it_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = SECRETS["openai_api_key"]

    def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError(f"transport bug sending {request.headers['authorization']}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(explode)) as http:
        config = LLMConfig(base_url="http://llm.invalid/v1", model="m", api_key=key)
        answerer = GroundedAnswerer(ChatClient(config, http))
        bot = PolicyBot.create(Settings(retriever="lexical"), storage=Storage.memory())
        bot.ensure_policy()
        retrieval = bot.retrieve("may I share our unreleased roadmap on LinkedIn?")
        with caplog.at_level(logging.WARNING, logger="bot.answering.grounded"):
            draft = await answerer.answer(retrieval, outcome=Outcome.ANSWERED)
        bot.storage.close()
    (fallback,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "transport bug sending Bearer [redacted]" in fallback and key not in fallback
    assert key not in " ".join(draft.notes) and REDACTED in draft.notes[-1]


def test_rows_logged_before_scrubbing_are_scrubbed_in_lists_and_exports(
    tmp_path: Path,
) -> None:
    """A question logged by a bot that did not know the token (an older version, or the token
    set later) is shown and exported without it."""
    token = SECRETS["admin_token"]
    db = str(tmp_path / "old.db")
    storage = Storage.open(db)
    bot = PolicyBot.create(Settings(db_path=db, retriever="lexical"), storage=storage)
    bot.ensure_policy()
    asyncio.run(bot.ask(IncomingQuestion(f"may I post our admin token {token} on LinkedIn?")))
    assert token in json.dumps([q.as_json() for q in storage.questions(status=None)])
    storage.close()
    env = {"POLICYBOT_DB": "", "POLICYBOT_ADMIN_TOKEN": token}
    outputs = [
        CliRunner().invoke(cli_main, ["--db", db, *args], env=env)
        for args in (
            ("questions", "list", "--json"),
            ("questions", "list", "--status", "all", "--questions"),
            ("questions", "export", "--format", "csv"),
            ("questions", "export", "--format", "json"),
        )
    ]
    assert [result.exit_code for result in outputs] == [0, 0, 0, 0]
    assert all(REDACTED in result.output for result in outputs[::2])
    assert not [n for n, result in enumerate(outputs) if token in result.output]
    # The CLI configures no logging; what its commands log goes to the last resort, filtered.
    last_resort = logging.lastResort
    assert last_resort is not None
    filters = [f for f in last_resort.filters if isinstance(f, RedactingFilter)]
    for f in filters:
        last_resort.removeFilter(f)
    assert len(filters) == 1 and filters[0].redactor.scrub(token) == REDACTED
