"""The web console's sign-ins: sessions, one-time links and identity-provider sign-ins under
way. Only hashes of the tokens a browser or the CLI holds are stored, so a copy of the
database signs nobody in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.store.connection import Connected

#: How often a session's last-seen time is written: often enough for the idle lifetime, not
#: a write per page view.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser: who (their roles are not kept: they are read from the settings on
    every request) and since when."""

    id: int
    platform: str
    user_id: str
    name: str
    via: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class ConsoleLink:
    """Whom a one-time sign-in link signs in."""

    platform: str
    user_id: str
    name: str


class ConsoleStore(Connected):
    """Console sessions, sign-in links and sign-ins under way."""

    # -- sessions -------------------------------------------------------------------------
    def create_console_session(
        self,
        token_hash: str,
        *,
        platform: str,
        user_id: str,
        name: str,
        via: str,
        expires_at: datetime,
        now: datetime | None = None,
    ) -> int:
        now = now or datetime.now(UTC)
        with self._writing("The console session"), self.db.atomic():
            return self.db.insert_id(
                "console_sessions",
                {
                    "token_hash": token_hash,
                    "platform": platform,
                    "user_id": user_id,
                    "name": name,
                    "via": via,
                    "created_at": _stamp(now),
                    "last_seen_at": _stamp(now),
                    "expires_at": _stamp(expires_at),
                },
            )

    def console_session(
        self, token_hash: str, *, idle: timedelta, now: datetime | None = None
    ) -> ConsoleSession | None:
        """The live session whose token hashes to `token_hash`, its last-seen time moved to
        `now`; None when there is none, or it ended (idle for `idle`, or past its absolute
        end), in which case its row is deleted."""
        now = now or datetime.now(UTC)
        row = self.db.execute(
            "SELECT id, platform, user_id, name, via, created_at, last_seen_at, expires_at "
            "FROM console_sessions WHERE token_hash = ?",
            [token_hash],
        ).fetchone()
        if row is None:
            return None
        session = ConsoleSession(
            int(row[0]),
            str(row[1]),
            str(row[2]),
            str(row[3] or ""),
            str(row[4] or ""),
            _moment(row[5]),
            _moment(row[6]),
            _moment(row[7]),
        )
        if now >= session.expires_at or now - session.last_seen_at >= idle:
            self.delete_console_session(session.id)
            return None
        if now - session.last_seen_at >= LAST_SEEN_RESOLUTION:
            with self._writing("The console session"), self.db.atomic():
                self.db.execute(
                    "UPDATE console_sessions SET last_seen_at = ? WHERE id = ?",
                    [_stamp(now), session.id],
                )
        return session

    def delete_console_session(self, session_id: int) -> bool:
        with self._writing("The console session"), self.db.atomic():
            deleted = self.db.execute(
                "DELETE FROM console_sessions WHERE id = ?", [session_id]
            ).rowcount
        return deleted == 1

    def console_sessions(self) -> list[ConsoleSession]:
        """Every stored session, newest first (ended ones included until pruned)."""
        rows = self.db.execute(
            "SELECT id, platform, user_id, name, via, created_at, last_seen_at, expires_at "
            "FROM console_sessions ORDER BY id DESC"
        ).fetchall()
        return [
            ConsoleSession(
                int(r[0]),
                str(r[1]),
                str(r[2]),
                str(r[3] or ""),
                str(r[4] or ""),
                _moment(r[5]),
                _moment(r[6]),
                _moment(r[7]),
            )
            for r in rows
        ]

    def prune_console(self, *, idle: timedelta, now: datetime | None = None) -> int:
        """Delete ended sessions, expired or used links and sign-ins that were never
        finished; how many rows went."""
        now = now or datetime.now(UTC)
        with self._writing("The console sessions"), self.db.atomic():
            gone = self.db.execute(
                "DELETE FROM console_sessions WHERE expires_at <= ? OR last_seen_at <= ?",
                [_stamp(now), _stamp(now - idle)],
            ).rowcount
            gone += self.db.execute(
                "DELETE FROM console_links WHERE expires_at <= ? OR used_at IS NOT NULL",
                [_stamp(now)],
            ).rowcount
            gone += self.db.execute(
                "DELETE FROM console_sign_ins WHERE expires_at <= ?", [_stamp(now)]
            ).rowcount
        return int(gone)

    # -- one-time sign-in links -----------------------------------------------------------
    def create_console_link(
        self,
        token_hash: str,
        *,
        platform: str,
        user_id: str,
        name: str,
        expires_at: datetime,
        now: datetime | None = None,
    ) -> None:
        now = now or datetime.now(UTC)
        with self._writing("The sign-in link"), self.db.atomic():
            self.db.insert(
                "console_links",
                {
                    "token_hash": token_hash,
                    "platform": platform,
                    "user_id": user_id,
                    "name": name,
                    "created_at": _stamp(now),
                    "expires_at": _stamp(expires_at),
                    "used_at": None,
                },
            )

    def use_console_link(
        self, token_hash: str, *, now: datetime | None = None
    ) -> ConsoleLink | None:
        """Whom the link signs in, marking it used in the same conditional UPDATE, so of two
        requests racing with one link only one signs in; None when the link is unknown, used
        or expired."""
        now = now or datetime.now(UTC)
        with self._writing("The sign-in link"), self.db.atomic():
            taken = self.db.execute(
                "UPDATE console_links SET used_at = ? "
                "WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                [_stamp(now), token_hash, _stamp(now)],
            ).rowcount
            if taken != 1:
                return None
            row = self.db.execute(
                "SELECT platform, user_id, name FROM console_links WHERE token_hash = ?",
                [token_hash],
            ).fetchone()
        return ConsoleLink(str(row[0]), str(row[1]), str(row[2] or ""))

    # -- identity-provider sign-ins under way ---------------------------------------------
    def start_console_sign_in(
        self,
        state_hash: str,
        *,
        provider: str,
        browser_hash: str,
        expires_at: datetime,
        now: datetime | None = None,
    ) -> None:
        now = now or datetime.now(UTC)
        with self._writing("The sign-in"), self.db.atomic():
            self.db.insert(
                "console_sign_ins",
                {
                    "state_hash": state_hash,
                    "provider": provider,
                    "browser_hash": browser_hash,
                    "created_at": _stamp(now),
                    "expires_at": _stamp(expires_at),
                },
            )

    def finish_console_sign_in(
        self, state_hash: str, *, provider: str, now: datetime | None = None
    ) -> str | None:
        """The browser hash of the unexpired sign-in with this state for `provider`, deleted
        in the same transaction (a state is used once); None when there is none."""
        now = now or datetime.now(UTC)
        with self._writing("The sign-in"), self.db.atomic():
            row = self.db.execute(
                "SELECT browser_hash, expires_at FROM console_sign_ins "
                "WHERE state_hash = ? AND provider = ?",
                [state_hash, provider],
            ).fetchone()
            if row is None:
                return None
            deleted = self.db.execute(
                "DELETE FROM console_sign_ins WHERE state_hash = ?", [state_hash]
            ).rowcount
        if deleted != 1 or _moment(row[1]) <= now:
            return None
        return str(row[0])
