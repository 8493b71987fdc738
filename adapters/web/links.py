"""One-time sign-in links (`policybot console link`): for a laptop with no identity provider.

A link's token is random, kept only as its hash, used once, and valid for minutes
(`bot.console_sessions`); the server takes it only while it listens on loopback and the
request arrived there (adapters/web/auth_pages.py), since whoever holds the link signs in as
whom it names.
"""

from __future__ import annotations

from adapters.web.sessions import PREFIX


def link_url(token: str, port: int) -> str:
    return f"http://127.0.0.1:{port}{PREFIX}/link/{token}"
