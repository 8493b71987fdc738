"""A platform channel as the core sees it (a ChannelPoster or a ReviewPoster): it keeps what is
posted, or refuses as Slack does for a channel the app was removed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.notify import DeliveryError


@dataclass
class RecordingPoster:
    fail: bool = False
    posts: list[Any] = field(default_factory=list)  # digest texts or review notices

    async def post(self, item: Any) -> None:
        if self.fail:
            raise DeliveryError("channel_not_found")
        self.posts.append(item)
