"""Settings that put a question in the outcome band a test needs, on the bundled policy.

The thresholds are set either side of the confidence retrieval gives the question now, so a
test of what an uncertain answer looks like holds whatever that confidence becomes when
retrieval changes.
"""

from __future__ import annotations

import dataclasses

from bot.config import Settings
from bot.core import PolicyBot
from bot.store.database import Storage

#: Covered by the bundled policy (section 3.3): confident by default, uncertain in its band.
ROADMAP = "may I share our unreleased roadmap on LinkedIn?"


def confidence_of(settings: Settings, question: str) -> float:
    bot = PolicyBot.create(settings, storage=Storage.memory())
    try:
        bot.ensure_policy()
        return bot.retrieve(question).confidence
    finally:
        bot.storage.close()


def uncertain_for(settings: Settings, question: str = ROADMAP) -> Settings:
    """`settings` with POLICYBOT_MIN_CONFIDENCE above the question's confidence and
    POLICYBOT_UNCERTAIN_CONFIDENCE below it: the question is answered uncertainly."""
    confidence = confidence_of(settings, question)
    assert 0 < confidence < 1, confidence
    return dataclasses.replace(
        settings, min_confidence=(confidence + 1) / 2, uncertain_confidence=confidence / 2
    )
