"""The core's outbound hooks as a platform plays them: a Notifier (messages askers) and a
channel (a ChannelPoster or a ReviewPoster). They keep what they are sent, or refuse as Slack
does for a user who left or a channel the app was removed from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bot.notify import DeliveryError, ReplyAddress
from bot.use_cases import WeekCounts


@dataclass
class RecordingNotifier:
    refuse: set[str] = field(default_factory=set)  # user ids that cannot be reached
    sent: list[tuple[ReplyAddress, str]] = field(default_factory=list)

    async def send(self, address: ReplyAddress, text: str) -> None:
        if address.user_id in self.refuse:
            raise DeliveryError("user_not_found")
        self.sent.append((address, text))


#: What a review channel is sent (a ReviewNotice).
Posted = TypeVar("Posted")


@dataclass
class RecordingPoster(Generic[Posted]):
    fail: bool = False
    posts: list[Posted] = field(default_factory=list)

    async def post(self, item: Posted) -> None:
        if self.fail:
            raise DeliveryError("channel_not_found")
        self.posts.append(item)


@dataclass
class RecordingChannelPoster:
    """A ChannelPoster: the digests it is sent, and the weeks of the chart sent with each."""

    fail: bool = False
    posts: list[str] = field(default_factory=list)
    charts: list[tuple[WeekCounts, ...]] = field(default_factory=list)

    async def post(self, text: str, weeks: Sequence[WeekCounts] = ()) -> None:
        if self.fail:
            raise DeliveryError("channel_not_found")
        self.posts.append(text)
        self.charts.append(tuple(weeks))
