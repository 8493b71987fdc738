"""One-time sign-in links (`policybot console link`): for a laptop with no identity provider.

A link's token is random, kept only as its hash, used once, and valid for minutes; the server
takes it only while it listens on loopback and the request arrived there (adapters/web/
auth_pages.py), since whoever holds the link signs in as whom it names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.web.sessions import PREFIX, new_token, token_hash
from bot import access
from bot.models import Actor
from bot.store.database import Storage

#: How long a link may be valid, in minutes (`--minutes`).
DEFAULT_MINUTES = 10
MAX_MINUTES = 60


def create_link(
    storage: Storage, actor: Actor = access.OPERATOR, *, minutes: int = DEFAULT_MINUTES
) -> str:
    """A new link's token, valid for `minutes`, signing in `actor` (with the roles the
    settings give them when it is used; the local operator has both)."""
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValueError(f"a sign-in link is valid for 1 to {MAX_MINUTES} minutes")
    token = new_token()
    now = datetime.now(UTC)
    storage.create_console_link(
        token_hash(token),
        platform=actor.platform,
        user_id=actor.user_id,
        name=actor.name,
        expires_at=now + timedelta(minutes=minutes),
        now=now,
    )
    return token


def link_url(token: str, port: int) -> str:
    return f"http://127.0.0.1:{port}{PREFIX}/link/{token}"
