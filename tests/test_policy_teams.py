"""Who the not-covered reply says reviews: the active policy's owners, or the teams
POLICYBOT_POLICY_TEAMS names (so a policy without owner lines still says who)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.store.database import Storage

#: A policy without an owners line.
UNOWNED = """# Acme Social Media Policy

## 1. Photos

Employees may post photos from company events on personal accounts once everyone shown in
them has agreed to it.
"""
OWNED = "---\nowners: Communications\n---\n" + UNOWNED
NOT_COVERED = "what time does the cafeteria open on public holidays?"


async def not_covered_reply(settings: Settings, policy: str) -> str:
    bot = PolicyBot.create(settings, storage=Storage.memory())
    bot.policies.upload("acme.md", policy.encode(), activate=True)
    answer = await bot.ask(IncomingQuestion(NOT_COVERED, platform="cli"))
    assert not answer.answered
    return answer.lead


async def test_without_owner_lines_or_the_setting_the_reply_names_no_team(
    settings: Settings,
) -> None:
    lead = await not_covered_reply(settings, UNOWNED)
    assert "logged your question for the policy team, who review" in lead


async def test_the_setting_names_the_teams_for_a_policy_without_owner_lines(
    settings: Settings,
) -> None:
    teams = Settings.from_env({"POLICYBOT_POLICY_TEAMS": " HR, IT ,Legal,"}).policy_teams
    assert teams == ("HR", "IT", "Legal")
    lead = await not_covered_reply(replace(settings, policy_teams=teams), UNOWNED)
    assert "for the policy team (HR, IT and Legal), who review" in lead


async def test_the_setting_names_the_teams_instead_of_the_policys_owners(
    settings: Settings,
) -> None:
    assert "(Communications)" in await not_covered_reply(settings, OWNED)
    lead = await not_covered_reply(replace(settings, policy_teams=("Legal",)), OWNED)
    assert "the policy team (Legal)" in lead and "Communications" not in lead


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("HR, <!channel>", "'<!channel>' is not a team name"),
        ("HR, *Legal*", "'*Legal*' is not a team name"),
        ("HR, ---", "'---' is not a team name"),
        ("HR, " + "x" * 80, "is not a team name: at most 60 characters"),
        ("HR, Le\x07gal", "is not a team name"),
        (", ".join(f"Team {n}" for n in range(13)), "names 13 teams; at most 12"),
    ],
)
def test_a_bad_team_list_is_refused_at_start_up_saying_why(value: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match="POLICYBOT_POLICY_TEAMS") as refused:
        Settings.from_env({"POLICYBOT_POLICY_TEAMS": value})
    assert complaint in str(refused.value)
    assert "e.g. POLICYBOT_POLICY_TEAMS=HR, IT, Legal" in str(refused.value)
