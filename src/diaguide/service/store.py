"""The service's store: audit records, feedback, stored recommendations, cached narratives, users.

SQLAlchemy 2 models on SQLite (WAL, under ./var/) or PostgreSQL (psycopg 3). Audit records
hold ids, hashes, versions, timings and counts — never patient text and never tokens. The
visit itself is kept only with a stored recommendation, which is served behind a login.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, create_engine, event, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from diaguide.errors import ConfigError, InputError
from diaguide.service.inputs import bad_text, check_text


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class AuditRecord(Base):
    __tablename__ = "audit_records"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(200), index=True)
    hook: Mapped[str | None] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(40))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    record_hash: Mapped[str | None] = mapped_column(String(64))
    recommendation_id: Mapped[str | None] = mapped_column(String(36))
    principal: Mapped[str | None] = mapped_column(String(200), doc="issuer or username, never a token")
    reason: Mapped[str | None] = mapped_column(String(200), doc="a break-glass access's stated reason")
    model_version: Mapped[str | None] = mapped_column(String(200))
    adapter_version: Mapped[str | None] = mapped_column(String(200))
    rule_version: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[float] = mapped_column(Float)
    engine_ms: Mapped[float | None] = mapped_column(Float)
    cards_info: Mapped[int] = mapped_column(Integer, default=0)
    cards_warning: Mapped[int] = mapped_column(Integer, default=0)
    cards_critical: Mapped[int] = mapped_column(Integer, default=0)


class Recommendation(Base):
    __tablename__ = "recommendations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    channel: Mapped[str] = mapped_column(String(20), doc="cds | rest | page")
    record_hash: Mapped[str] = mapped_column(String(64), index=True)
    visit: Mapped[dict[str, Any]] = mapped_column(JSON)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    complexity: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    plan_source: Mapped[str] = mapped_column(String(20), default="guideline", server_default="guideline")
    # who may read it without breaking glass (docs/security.md#access-model): the physician who made it
    # (REST, page) or, for a CDS Hooks call, the EHR user named in its context.userId
    created_by: Mapped[str | None] = mapped_column(String(200), index=True)
    ehr_user: Mapped[str | None] = mapped_column(String(200), index=True)


class Card(Base):
    __tablename__ = "cards"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    service: Mapped[str] = mapped_column(String(64))
    recommendation_id: Mapped[str | None] = mapped_column(String(36), index=True)
    indicator: Mapped[str] = mapped_column(String(10))
    rule_id: Mapped[str | None] = mapped_column(String(100))


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    channel: Mapped[str] = mapped_column(String(20))
    service: Mapped[str | None] = mapped_column(String(64))
    card_uuid: Mapped[str | None] = mapped_column(String(64), index=True)
    recommendation_id: Mapped[str | None] = mapped_column(String(36), index=True)
    outcome: Mapped[str] = mapped_column(String(20), doc="accepted | overridden | modified | rejected")
    override_reason: Mapped[str | None] = mapped_column(String(200))
    comment: Mapped[str | None] = mapped_column(Text)
    accepted_suggestions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    principal: Mapped[str | None] = mapped_column(String(200))
    outcome_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Narrative(Base):
    __tablename__ = "narratives"

    record_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), doc="pending | ready | failed")
    text: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(200))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), doc="physician | admin")
    active: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    # raised on logout, password change, role change and deactivation: every older session stops working
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ehr_user: Mapped[str | None] = mapped_column(String(200), doc="the EHR's userId for this physician")


class UsedToken(Base):
    """JWT ids already seen, so a replayed EHR token is refused (kept until the token expires)."""

    __tablename__ = "used_tokens"

    issuer: Mapped[str] = mapped_column(String(300), primary_key=True)
    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class LoginFailure(Base):
    """Failed logins per account (hashed username) and per client address, for throttling."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(100), primary_key=True, doc="user:<sha256> or addr:<address>")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class StoreMeta(Base):
    """Facts about the database itself: `mode` is demo or production (docs/security.md#demo-mode)."""

    __tablename__ = "store_meta"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


def check_row(row: Base) -> None:
    """Refuse, naming `table.column`, a text no database can hold (NUL, a lone surrogate) or longer
    than its column: PostgreSQL refuses those with an error, SQLite would keep them, so both get this.
    (docs/security.md, "Input limits")"""
    for column in row.__table__.columns:
        value = getattr(row, column.key, None)
        if isinstance(value, str):
            field = f"{row.__tablename__}.{column.key}"
            check_text(value, field)
            length = getattr(column.type, "length", None)
            if length and len(value) > length:
                raise InputError(f"longer than {length} characters", field=field)


def make_db_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their folder, WAL and a busy timeout.

    `hide_parameters`: a database error's text never carries the row's values (patient data) into
    a log (docs/security.md, "Logs")."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"not a database URL: {exc}", field="DIAGUIDE_DATABASE_URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # WAL: readers never block the writer; synchronous=NORMAL in WAL mode loses nothing a
            # committed transaction wrote when the *process* dies (SIGKILL), only on power loss.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    else:
        if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() not in ("psycopg", ""):
            raise ConfigError("use the psycopg 3 driver: postgresql+psycopg://...", field="DIAGUIDE_DATABASE_URL")
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True)
    event.listen(engine, "before_cursor_execute", _refuse_unusable_parameters)
    return engine


def _refuse_unusable_parameters(conn, cursor, statement, parameters, context, executemany) -> None:
    """The last net under every query: a NUL byte or a lone surrogate in a parameter is an InputError
    (a 400), not the driver's error (a 500) — PostgreSQL's text has no NUL, neither database's no surrogate."""
    positions = getattr(getattr(context, "compiled", None), "positiontup", None) or ()
    for row in parameters if executemany else [parameters]:
        for key, value in row.items() if isinstance(row, dict) else enumerate(row or ()):
            if isinstance(value, str) and (problem := bad_text(value)):
                name = key if isinstance(key, str) else (positions[key] if key < len(positions) else None)
                raise InputError(problem, field=re.sub(r"_\d+$", "", name) if name else None)


class Store:
    """Sessions and the few queries the service needs."""

    def __init__(self, url: str, *, migrate: bool = True):
        self.url = url
        if migrate:
            from diaguide.service.migrations import upgrade

            upgrade(url)
        self.engine = make_db_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    def add(self, *rows: Base) -> None:
        """Insert `rows`; an InputError naming `table.column` for a text the database cannot hold."""
        for row in rows:
            check_row(row)
        with self.session() as s:
            s.add_all(rows)

    def get(self, model: type[Base], key: Any) -> Any:
        if isinstance(key, str) and bad_text(key):
            return None  # no row has such an id, and PostgreSQL would refuse the query (NUL)
        with self._sessions() as s:
            return s.get(model, key)

    def audit_page(self, limit: int = 100, offset: int = 0) -> list[AuditRecord]:
        with self._sessions() as s:
            q = select(AuditRecord).order_by(AuditRecord.created_at.desc()).limit(limit).offset(offset)
            return list(s.scalars(q))

    def count(self, model: type[Base]) -> int:
        with self._sessions() as s:
            return s.scalar(select(func.count()).select_from(model)) or 0

    def claim_token(self, issuer: str, jti: str, expires_at: dt.datetime) -> bool:
        """Record a JWT id; False when it was seen before (a replay)."""
        try:
            with self.session() as s:
                s.add(UsedToken(issuer=issuer, jti=jti, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    def purge_tokens(self) -> None:
        with self.session() as s:
            s.query(UsedToken).filter(UsedToken.expires_at < _now()).delete()

    def recommendations_of(self, record_hash: str, limit: int = 50) -> list[Recommendation]:
        """Stored recommendations of one record (a narrative's record), newest first."""
        with self._sessions() as s:
            q = select(Recommendation).where(Recommendation.record_hash == record_hash)
            return list(s.scalars(q.order_by(Recommendation.created_at.desc()).limit(limit)))

    def foreign_cards(self, uuids: list[str], owner: str) -> list[str]:
        """Which of these card uuids were issued for a recommendation someone other than `owner` asked for."""
        with self._sessions() as s:
            q = (
                select(Card.uuid)
                .join(Recommendation, Recommendation.id == Card.recommendation_id)
                .where(Card.uuid.in_(uuids), Recommendation.created_by != owner)
            )
            return list(s.scalars(q))

    def mode(self, wanted: str) -> str:
        """The database's mode (demo | production), recorded by its first service start as `wanted`.

        A database from before modes were recorded that already holds users or recommendations is production.
        """
        try:
            return self._mode(wanted)
        except IntegrityError:  # another worker recorded it first
            return self._mode(wanted)

    def _mode(self, wanted: str) -> str:
        with self.session() as s:
            row = s.get(StoreMeta, "mode")
            if row is not None:
                return row.value
            used = s.scalar(select(func.count()).select_from(User)) or s.scalar(
                select(func.count()).select_from(Recommendation)
            )
            mode = "production" if used else wanted
            s.add(StoreMeta(key="mode", value=mode))
            return mode

    def put_narrative(self, record_hash: str, status: str, text: str | None = None, **extra: Any) -> None:
        with self.session() as s:
            row = s.get(Narrative, record_hash)
            if row is None:
                s.add(Narrative(record_hash=record_hash, status=status, text=text, **extra))
            else:
                row.status, row.text = status, text
                for key, value in extra.items():
                    setattr(row, key, value)

    def close(self) -> None:
        self.engine.dispose()
