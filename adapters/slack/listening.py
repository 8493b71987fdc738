"""What every Slack listener is given besides bolt's arguments, and what several of them read
from an interaction payload.

`app.py` puts one `Listening` in bolt's context for each request (the context is how bolt hands
data to listeners); a listener takes it out with `listening_in(context)`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from adapters.backlog import finish_within
from adapters.slack.messages import PLATFORM
from bot.core import Delivery, PolicyBot, Receipt
from bot.models import Actor

log = logging.getLogger(__name__)

#: Where, in bolt's context, listeners find their `Listening`.
LISTENING = "policybot_listening"
#: Where a listener finds the `Receipt` of the question its delivery carries (see
#: `app.once_per_delivery`).
RECEIVED = "policybot_receipt"


#: Slack's errors for a workspace or app without the agent surface: not asked again for
#: AGENT_RECHECK seconds (an admin may reinstall the app from the new manifest meanwhile).
NOT_AN_AGENT = frozenset(
    {
        "not_allowed",
        "unknown_method",
        "missing_scope",
        "not_allowed_token_type",
        "method_deprecated",
    }
)
AGENT_RECHECK = 600.0


class AgentSurface:
    """Whether this app may use the agent surface, as Slack last said: after a refusal that
    means the workspace lacks it, questions are answered without asking again for a while."""

    def __init__(self) -> None:
        self.refused_until = 0.0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self.refused_until

    def refused(self) -> None:
        self.refused_until = time.monotonic() + AGENT_RECHECK


class BotUser:
    """The bot's own Slack user id, as bolt's authorization found it (auth.test, once a
    process): a question is read out of an Events API delivery before bolt runs (app.py),
    and a mention of the bot, or the bot's own message, is told by it."""

    def __init__(self) -> None:
        self.id: str | None = None


@dataclass(frozen=True)
class Listening:
    """The core the listeners call, how long an answer may take before "Thinking…",
    whether the agent surface is there, and who the bot is."""

    bot: PolicyBot
    thinking_delay: float
    #: Whether Slack lets this app use the agent surface (status, title, prompts).
    agent: AgentSurface = field(default_factory=AgentSurface)
    bot_user: BotUser = field(default_factory=BotUser)
    #: Listeners acting on a delivery they acknowledged (a click, a form, a file): a stop
    #: lets them finish (`finish_acting`), since Slack will not send them again.
    acting: set[asyncio.Task[Any]] = field(default_factory=set)


async def answer_once(context: AsyncBoltContext) -> Delivery:
    """Whether this delivery's question is this process's to answer (False: another process,
    or this one before a restart, took it first) and its received id, once the database has
    it; a delivery without a receipt is answered."""
    receipt: Receipt | None = context.get(RECEIVED)
    return Delivery(True) if receipt is None else await receipt.delivery()


async def first_delivery(context: AsyncBoltContext) -> bool:
    """For a listener acting on a delivery that carries no question (a click, a file, a
    form), after acknowledging it: whether this is its first delivery to any process (False:
    a replay, or another process took it), once the database knows. From here on a stop
    waits for the listener (`Listening.acting`)."""
    task = asyncio.current_task()
    if task is not None:
        acting = listening_in(context).acting
        acting.add(task)
        task.add_done_callback(acting.discard)
    return (await answer_once(context)).first


async def finish_acting(listening: Listening, grace: float) -> None:
    """At a stop: the listeners acting on acknowledged deliveries finish, or are cancelled
    after `grace` seconds. (A question is never lost this way: it is kept until its reply
    goes out and answered on the next start; a click is only applied once, here.)"""
    cut = await finish_within(listening.acting, grace)
    if cut:
        log.warning("%d Slack action(s) cut short by the stop", cut)


def listening_in(context: AsyncBoltContext) -> Listening:
    """The `Listening` app.py put in this request's bolt context."""
    found: Listening = context[LISTENING]
    return found


def who_clicked(user: dict[str, Any]) -> Actor:
    """The user of an interaction payload, with the name Slack gave."""
    return Actor(PLATFORM, user["id"], user.get("username") or user.get("name", ""))


def clicked_id(action: dict[str, Any]) -> int | None:
    try:
        return int(action.get("value", ""))
    except ValueError:
        return None


async def tell(
    body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, text: str
) -> None:
    """A private note to whoever clicked, under the message they clicked on (a click in
    App Home has no message: the note goes to their DM with the bot)."""
    if body.get("response_url"):
        await respond(text=text, response_type="ephemeral", replace_original=False)
        return
    channel = (body.get("channel") or {}).get("id")
    if channel:
        await client.chat_postEphemeral(channel=channel, user=body["user"]["id"], text=text)
    else:
        await client.chat_postMessage(channel=body["user"]["id"], text=text)
