from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.core import PolicyBot
from bot.storage import Storage
from tests.fakes.openai_stub import OpenAIStub

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_POLICY = ROOT / "policies" / "social-media-and-electronic-communication.md"


@pytest.fixture(autouse=True)
def lexical_retriever(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run the default lexical path even where the semantic extra is installed, so
    results do not depend on the machine; the semantic tests choose it explicitly."""
    monkeypatch.setenv("POLICYBOT_RETRIEVER", "lexical")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(db_path=str(tmp_path / "policybot.db"), retriever="lexical")


@pytest.fixture
def bot(settings: Settings) -> Iterator[PolicyBot]:
    """A core on an in-memory database with the bundled policy active."""
    policy_bot = PolicyBot.create(settings, storage=Storage.memory())
    policy_bot.ensure_policy()
    yield policy_bot
    policy_bot.storage.close()


#: Two versions of one document: the newer drops the section on phones for one on livestreams.
PHONES_POLICY = """# Devices policy

## 1. Phones

Employees may read work email on a personal phone only with the device management app installed.
"""
LIVESTREAM_POLICY = """# Devices policy

## 1. Livestreaming

Employees must not livestream video from any warehouse without written approval from Public Relations.
"""


@pytest.fixture
def reworded_bot(settings: Settings) -> Iterator[PolicyBot]:
    """A core whose active version (livestreams) no longer says what the retired one did
    (phones); `policies.rollback("devices")` brings the phones back."""
    policy_bot = PolicyBot.create(settings, storage=Storage.memory())
    for text in (PHONES_POLICY, LIVESTREAM_POLICY):
        policy_bot.policies.upload("devices.md", text.encode(), activate=True)
    yield policy_bot
    policy_bot.storage.close()


@pytest.fixture
def llm_stub() -> Iterator[OpenAIStub]:
    """An OpenAI-compatible stub server on loopback; tests script its replies."""
    with OpenAIStub() as stub:
        yield stub


# -- reliability figures (see tests/reliability.py and docs/reliability.md) ---------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-report",
        default="",
        help="write the reliability checks' figures and every test's outcome to this JSON file",
    )


_OUTCOMES: dict[str, dict[str, object]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        entry = _OUTCOMES.setdefault(report.nodeid, {"outcome": "passed"})
        if report.outcome != "passed":
            entry["outcome"] = report.outcome


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Hypothesis tests carry their settings: the report states how many inputs each may try.
    for item in items:
        function = getattr(item, "obj", None)
        chosen = getattr(function, "_hypothesis_internal_use_settings", None)
        if chosen is not None:
            _OUTCOMES.setdefault(item.nodeid, {"outcome": "passed"})["max_examples"] = (
                chosen.max_examples
            )


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--reliability-report")
    if not path:
        return
    import dataclasses
    import json

    from tests.reliability import FIGURES

    ran = {k: v for k, v in _OUTCOMES.items() if "outcome" in v and k in _RAN}
    Path(path).write_text(
        json.dumps({"figures": [dataclasses.asdict(f) for f in FIGURES], "tests": ran}, indent=2)
    )


_RAN: set[str] = set()


def pytest_runtest_logstart(nodeid: str) -> None:
    _RAN.add(nodeid)
