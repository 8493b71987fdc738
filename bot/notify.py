"""Sending a message to someone who asked, on the platform they asked on, or to a channel.

The core decides what to send and to whom (a reviewed answer to everyone who asked, the weekly
digest to the policy team's channels, a question that has just reached the review list to the
review channel); each platform adapter supplies a Notifier and, where such channels are
configured, a ChannelPoster and a ReviewPoster that know how to deliver it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.answering.checking import PostCheck
from bot.models import Answer

if TYPE_CHECKING:  # bot.review imports this module; the type only, no import at run time
    from bot.review.trends import WeekCounts


@dataclass(frozen=True)
class ReplyAddress:
    platform: str
    user_id: str
    conversation: str = ""  # a DM channel, thread or serialized conversation reference


class DeliveryError(RuntimeError):
    """The platform did not take the message; the caller keeps the address and may retry."""


class Notifier(Protocol):
    async def send(self, address: ReplyAddress, text: str) -> None: ...


class ChannelPoster(Protocol):
    """Posts to one configured channel (POLICYBOT_DIGEST_SLACK_CHANNEL,
    POLICYBOT_DIGEST_TEAMS_CONVERSATION); raises DeliveryError when the platform refuses.
    With `weeks`, the weekly chart of them goes with the text where the platform can show a
    picture; a chart that cannot be sent is logged and the text stands (it was posted)."""

    async def post(self, text: str, weeks: Sequence[WeekCounts] = ()) -> None: ...


@dataclass(frozen=True)
class Referral:
    """A question that has just gone on the review list, and why (what the core hands an
    adapter to pass on to `PolicyBot.announce`)."""

    question_id: int | None  # None when the log could not take it yet (see bot.store.unlogged)
    reason: str  # "not_covered", "uncertain", "not_helpful", "ask_policy_team" or "failed"
    question: str = ""  # the text, when the caller has it; else read when announced


@dataclass(frozen=True)
class ReviewNotice:
    """A question that has just gone on the policy team's review list, for the review channel."""

    question: str
    question_id: int | None  # None when the log could not take it yet (see bot.store.unlogged)
    reason: str  # "not_covered", "uncertain", "not_helpful", "ask_policy_team" or "failed"
    asker: str = ""  # the asker's platform user id, only with POLICYBOT_SHOW_ASKERS
    group_id: int | None = None  # the question group it joined, for Answer / Dismiss
    #: The asker's display name where the platform gave one, only with POLICYBOT_SHOW_ASKERS;
    #: for platforms that cannot turn `asker` into a name themselves (Teams).
    asker_name: str = ""


class ReviewPoster(Protocol):
    """Posts review notices to one platform's review channel (POLICYBOT_SLACK_REVIEW_CHANNEL,
    POLICYBOT_TEAMS_REVIEW_CONVERSATION); raises DeliveryError when the platform refuses."""

    async def post(self, notice: ReviewNotice) -> None: ...


@dataclass(frozen=True)
class LateReply:
    """What to send, on start, to someone whose question a stopped process had acknowledged
    but not answered: the answer (asked now, or as logged), a draft's check, or why there is
    neither (`refusal`: the question's own problem; both empty: answering failed)."""

    kind: str  # the platform's kind of question (see ReceivedQuestions.receive)
    address: ReplyAddress
    question: str
    answer: Answer | None = None
    check: PostCheck | None = None
    refusal: str = ""
    #: Received longer ago than the asker could expect an answer (bot.received.LATE_AFTER): the
    #: reply says so ("Sorry for the delay: …").
    late: bool = False


class LateReplier(Protocol):
    """Sends a LateReply on its platform; raises (DeliveryError or any platform error) when it
    did not go out, and the question is answered again on the next start."""

    async def send(self, reply: LateReply) -> None: ...
