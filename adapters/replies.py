"""Replying in time, on any platform: a "Thinking…" placeholder when the answer is slow, replaced
by the answer once it is ready, and one way every failure ends.

The platform supplies its message type (Slack's text and blocks, a Bot Framework Activity) and
a `Reply` that can post one and replace it; the timing and the error handling live only here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from bot import messages
from bot.models import QuestionError

log = logging.getLogger(__name__)

#: Seconds an answer may take before the placeholder is shown (read when an app is built).
THINKING_DELAY = 1.0
#: What the asker is told when answering failed for a reason that is not theirs.
APOLOGY = messages.APOLOGY  # the one wording, for every platform

T = TypeVar("T")
M = TypeVar("M")
M_contra = TypeVar("M_contra", contravariant=True)


class Reply(Protocol[M_contra]):
    """Where an answer goes: post once, then replace what was posted (the placeholder)."""

    async def post(self, message: M_contra) -> None: ...

    async def replace(self, message: M_contra) -> None: ...


async def reply_in_time(
    work: Awaitable[T],
    reply: Reply[M],
    *,
    render: Callable[[T], M],
    text: Callable[[str], M],
    thinking: M | None,
    delay: float,
) -> T | None:
    """Post `work`'s result, rendered; if it is not ready within `delay` seconds, post
    `thinking` first and replace it with the result. No `thinking` (the platform shows that
    the answer is on its way by other means, as Slack's agent status): the result is posted
    once, when it is ready.

    The work always runs to its end, whatever becomes of the messages or of the caller, so a
    question is logged even when its reply is lost. A QuestionError becomes its own message;
    any other failure (of the work or of rendering its result) the apology, and a log line.
    Returns the result, or None when there is none.
    """
    task = asyncio.ensure_future(work)
    shown = False
    if thinking is not None:
        done, _ = await asyncio.wait({task}, timeout=delay)
        if not done:
            try:
                await reply.post(thinking)
                shown = True
            except Exception:  # the answer can still be posted when it is ready
                log.exception("could not post the placeholder")
    result: T | None = None
    try:
        result = await asyncio.shield(task)
        message = render(result)
    except QuestionError as error:
        result, message = None, text(str(error))
    except Exception:
        log.exception("answering failed")
        result, message = None, text(APOLOGY)
    if shown:
        try:
            await reply.replace(message)
            return result
        except Exception:  # some clients cannot edit a message; a second one still answers
            log.warning("could not replace the placeholder; posting the answer", exc_info=True)
    await reply.post(message)
    return result
