"""Sending a message to someone who asked, on the platform they asked on.

The core decides what to send and to whom (a reviewed answer to everyone who asked); each
platform adapter supplies a Notifier that knows how to deliver it.
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
