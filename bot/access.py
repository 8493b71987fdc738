"""The security log: every refused attempt to get in, as one line on the `policybot.security`
logger (WARNING), so it can be routed and alerted on apart from the rest.

Lines name the action, the platform and who tried (a platform user id or a network address,
which the people investigating need), never a token, secret or the request's body.
"""

from __future__ import annotations

import logging

security_log = logging.getLogger("policybot.security")


def refused(action: str, *, platform: str, who: str, reason: str) -> None:
    """Record one refusal: `action` ("policy upload", "review"), whose, and why."""
    security_log.warning(
        "refused %s: platform=%s who=%s reason=%s",
        action,
        platform,
        _printable(who) or "unknown",
        reason,
    )


def _printable(value: str) -> str:
    # A user id comes from the request: keep it to one short line in the log.
    return "".join(c if c.isprintable() else "?" for c in value)[:120]
