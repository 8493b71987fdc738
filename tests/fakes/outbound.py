"""The core's outbound hooks as a platform plays them: a Notifier (messages askers) and a
channel (a ChannelPoster or a ReviewPoster). They keep what they are sent, or refuse as Slack
does for a user who left or a channel the app was removed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bot.notify import DeliveryError, ReplyAddress


@dataclass
class RecordingNotifier:
    refuse: set[str] = field(default_factory=set)  # user ids that cannot be reached
    sent: list[tuple[ReplyAddress, str]] = field(default_factory=list)

    async def send(self, address: ReplyAddress, text: str) -> None:
        if address.user_id in self.refuse:
            raise DeliveryError("user_not_found")
        self.sent.append((address, text))


#: What a channel is sent: a digest's text (ChannelPoster) or a ReviewNotice (ReviewPoster).
Posted = TypeVar("Posted")


@dataclass
class RecordingPoster(Generic[Posted]):
    fail: bool = False
    posts: list[Posted] = field(default_factory=list)

    async def post(self, item: Posted) -> None:
        if self.fail:
            raise DeliveryError("channel_not_found")
        self.posts.append(item)
