"""Server-side sessions: the cookie holds only a random id; the credential stays here.

Sessions live in the console's memory (one process): a restart signs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import SecretStr

Role = Literal["admin", "user"]
COOKIE = "turnout_console"


@dataclass(slots=True)
class Session:
    id: str
    role: Role
    credential: SecretStr
    label: str
    expires_at: float
    user_id: str | None = None
    """An end user's id (from their key's own listing); None for an admin or when unknown."""
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class SessionStore:
    """Sessions by id, each expiring ``ttl_s`` after sign-in."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def create(
        self,
        role: Role,
        credential: str,
        label: str,
        user_id: str | None = None,
        not_after: float | None = None,
    ) -> Session:
        """``not_after`` (epoch seconds, e.g. an OIDC token's ``exp``) caps the session's life."""
        self._sweep()
        sid = secrets.token_urlsafe(32)
        expires = self.clock() + self.ttl_s
        if not_after is not None:
            expires = min(expires, not_after)
        session = Session(sid, role, SecretStr(credential), label, expires, user_id)
        self._sessions[sid] = session
        return session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        if session.expires_at <= self.clock():
            del self._sessions[sid]
            return None
        return session

    def delete(self, sid: str | None) -> None:
        if sid:
            self._sessions.pop(sid, None)

    def _sweep(self) -> None:
        now = self.clock()
        for sid in [s for s, v in self._sessions.items() if v.expires_at <= now]:
            del self._sessions[sid]
