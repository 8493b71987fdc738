"""Sending a message to someone who asked, on the platform they asked on, or to a channel.

The core decides what to send and to whom (a reviewed answer to everyone who asked, the weekly
digest to the policy team's channels); each platform adapter supplies a Notifier and, where a
digest channel is configured, a ChannelPoster that know how to deliver it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
    POLICYBOT_DIGEST_TEAMS_CONVERSATION); raises DeliveryError when the platform refuses."""

    async def post(self, text: str) -> None: ...
