"""Who is signed in to the web console: sessions, one-time sign-in links, sign-ins under way.

The console's adapter handles cookies, redirects and the identity provider's protocol; what
it keeps between requests lives here, so the rules are the core's: a token is random, only
its SHA-256 reaches the database, sessions end after `POLICYBOT_CONSOLE_IDLE_MINUTES` unused
or `POLICYBOT_CONSOLE_SESSION_HOURS` in all, a link is used once within its minutes, and a
sign-in's state is bound to the browser that started it. Every call from the server goes
through the bot's worker.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from bot import access
from bot.config import Settings
from bot.models import Actor
from bot.store.console import ConsoleLink, ConsoleSession
from bot.store.database import Storage
from bot.worker import Worker

#: Random bytes in a session's, a link's or a sign-in state's token.
TOKEN_BYTES = 32
#: A token longer than this is no token of ours: refused before anything is looked up.
LONGEST_TOKEN = 256
#: How long a sign-in link may be valid, in minutes (`policybot console link --minutes`).
DEFAULT_LINK_MINUTES = 10
MAX_LINK_MINUTES = 60


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the database keeps of a token (a session's, a link's, a sign-in's state)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _looks_like_a_token(token: str) -> bool:
    return 0 < len(token) <= LONGEST_TOKEN


class ConsoleSessions:
    """The console's sign-in state on one bot's storage, through its worker."""

    def __init__(self, storage: Storage, worker: Worker, settings: Settings) -> None:
        self.storage = storage
        self.worker = worker
        self.settings = settings

    @property
    def idle(self) -> timedelta:
        return timedelta(minutes=self.settings.console_idle_minutes)

    @property
    def lifetime(self) -> timedelta:
        return timedelta(hours=self.settings.console_session_hours)

    # -- sessions --------------------------------------------------------------------------------
    async def start(self, actor: Actor, *, via: str, now: datetime | None = None) -> str:
        """A new session for `actor` (who may enter is the caller's check); its token. Sessions
        past their time are pruned first."""
        now = now or datetime.now(UTC)
        token = new_token()
        await self.worker.run(self.storage.prune_console, idle=self.idle, now=now)
        await self.worker.run(
            self.storage.create_console_session,
            token_hash(token),
            platform=actor.platform,
            user_id=actor.user_id,
            name=actor.name,
            via=via,
            expires_at=now + self.lifetime,
            now=now,
        )
        return token

    async def find(self, token: str) -> ConsoleSession | None:
        """The live session `token` opens (its last use moved to now), or None."""
        if not _looks_like_a_token(token):
            return None
        return await self.worker.run(
            self.storage.console_session, token_hash(token), idle=self.idle
        )

    async def end(self, session_id: int) -> bool:
        """End a session; False when it had already ended."""
        return await self.worker.run(self.storage.delete_console_session, session_id)

    async def listed(self) -> list[ConsoleSession]:
        """Every live session, for an admin's sessions page."""
        return await self.worker.run(self.storage.console_sessions)

    # -- one-time links --------------------------------------------------------------------------
    def create_link(
        self, actor: Actor = access.OPERATOR, *, minutes: int = DEFAULT_LINK_MINUTES
    ) -> str:
        """A new link's token, valid for `minutes`, signing in `actor` (with the roles the
        settings give them when it is used; the local operator has both). For the command
        line, which has no event loop: called on its own thread."""
        if not 1 <= minutes <= MAX_LINK_MINUTES:
            raise ValueError(f"a sign-in link is valid for 1 to {MAX_LINK_MINUTES} minutes")
        token = new_token()
        now = datetime.now(UTC)
        self.storage.create_console_link(
            token_hash(token),
            platform=actor.platform,
            user_id=actor.user_id,
            name=actor.name,
            expires_at=now + timedelta(minutes=minutes),
            now=now,
        )
        return token

    async def use_link(self, token: str) -> ConsoleLink | None:
        """The link `token` is, used up by this call; None when unknown, used or expired."""
        if not _looks_like_a_token(token):
            return None
        return await self.worker.run(self.storage.use_console_link, token_hash(token))

    # -- sign-ins through an identity provider ---------------------------------------------------
    async def start_sign_in(self, provider: str, *, expires_at: datetime) -> tuple[str, str]:
        """(state, binding): the state to send the provider, and the token the browser keeps
        in a cookie so only it can finish this sign-in."""
        state, binding = new_token(), new_token()
        await self.worker.run(
            self.storage.start_console_sign_in,
            token_hash(state),
            provider=provider,
            browser_hash=token_hash(binding),
            expires_at=expires_at,
            now=datetime.now(UTC),
        )
        return state, binding

    async def finish_sign_in(self, state: str, binding: str, provider: str) -> str:
        """Use up the sign-in `state` names: "" when it was this browser's (`binding`) and
        live, otherwise why not, for the security log."""
        if not _looks_like_a_token(state):
            return "no state"
        browser_hash = await self.worker.run(
            self.storage.finish_console_sign_in, token_hash(state), provider=provider
        )
        if browser_hash is None:
            return "unknown, used or expired state"
        if not binding or not hmac.compare_digest(browser_hash, token_hash(binding)):
            return "the state belongs to another browser"
        return ""
