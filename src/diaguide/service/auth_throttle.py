"""Login throttling per account and per client address (docs/security.md#logins).

Every failed login raises two counters in the store (so all workers share them): one for the
account tried — keyed by the SHA-256 of the username, known or not, so the throttle itself tells
nothing about which accounts exist — and one for the client address. Past a few free failures
each further one locks the key for twice as long as the last (1 s, 2 s, 4 s ...), and at the
lock-out count for the full lock-out time; while a key is locked even the right password is
refused unchecked, and the refused attempt counts as a failure. A successful login clears the
account's counter, never the address's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from diaguide.service.auth_users import Principal, authenticate
from diaguide.service.store import LoginFailure, Store


def username_hash(username: str) -> str:
    """How audit records and counters name a username that was tried (never the name itself)."""
    return "sha256:" + hashlib.sha256(username.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]


@dataclass(frozen=True)
class Limits:
    free: int  # failures before any delay
    lockout: int  # failures that lock the key for `lockout_seconds`
    lockout_seconds: float

    def delay(self, failures: int) -> float:
        if failures >= self.lockout:
            return self.lockout_seconds
        if failures < self.free:
            return 0.0
        return min(self.lockout_seconds, 2.0 ** (failures - self.free))


@dataclass(frozen=True)
class LoginResult:
    principal: Principal | None
    retry_after: float = 0.0  # > 0: refused unchecked, the account or address is locked


class Throttle:
    def __init__(self, store: Store, account: Limits, address: Limits):
        self.store = store
        self.limits = {"user": account, "addr": address}

    def login(self, username: str, password: str, address: str | None) -> LoginResult:
        """Check a login unless its account or address is locked; count a failure, clear the account on success."""
        keys = {"user": "user:" + username_hash(username), "addr": f"addr:{address or 'unknown'}"[:100]}
        if self._locked(list(keys.values())) > 0:
            # an attempt on a locked key counts too: hammering a lock makes it longer, never shorter
            for kind, key in keys.items():
                self._fail(key, self.limits[kind])
            return LoginResult(None, self._locked(list(keys.values())))
        principal = authenticate(self.store, username, password)
        if principal is None:
            for kind, key in keys.items():
                self._fail(key, self.limits[kind])
        else:
            with self.store.session() as s:
                s.query(LoginFailure).filter(LoginFailure.key == keys["user"]).delete()
        return LoginResult(principal)

    def _locked(self, keys: list[str]) -> float:
        now = _now()
        with self.store.session() as s:
            rows = s.query(LoginFailure).filter(LoginFailure.key.in_(keys)).all()
            until = [_aware(r.locked_until) for r in rows if r.locked_until is not None]
        return max([(u - now).total_seconds() for u in until if u > now], default=0.0)

    def _fail(self, key: str, limits: Limits) -> None:
        for _ in range(3):  # two workers may insert the same new key at once: the loser retries as an update
            try:
                with self.store.session() as s:
                    bumped = s.execute(
                        update(LoginFailure)
                        .where(LoginFailure.key == key)
                        .values(failures=LoginFailure.failures + 1)
                        .returning(LoginFailure.failures)
                    ).scalar()
                    if bumped is None:
                        s.add(LoginFailure(key=key, failures=1, locked_until=_later(limits.delay(1))))
                    elif limits.delay(bumped) > 0:
                        locked = update(LoginFailure).where(LoginFailure.key == key)
                        s.execute(locked.values(locked_until=_later(limits.delay(bumped))))
                return
            except IntegrityError:
                continue


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _later(seconds: float) -> dt.datetime | None:
    return _now() + dt.timedelta(seconds=seconds) if seconds > 0 else None


def _aware(when: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; they were written in UTC
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
