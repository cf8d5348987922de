import datetime as dt

from sqlalchemy import inspect

from diaguide.service.store import AuditRecord, Feedback, Narrative, Store


def test_migration_creates_every_table_and_is_idempotent(db_url):
    store = Store(db_url)
    Store(db_url).close()  # a second startup must not fail or duplicate anything
    tables = set(inspect(store.engine).get_table_names())
    assert {"audit_records", "feedback", "narratives", "recommendations", "users", "used_tokens", "cards"} <= tables
    assert "alembic_version" in tables
    store.close()


def test_audit_feedback_and_narrative_round_trip(db_url):
    store = Store(db_url)
    store.add(AuditRecord(method="POST", route="/cds-services/x", status_code=200, outcome="ok", duration_ms=3.5))
    store.add(Feedback(channel="cds", card_uuid="c-1", outcome="overridden", override_reason="patient declined"))
    store.put_narrative("h" * 64, "pending")
    store.put_narrative("h" * 64, "ready", "Start metformin.", model_version="rules")
    assert store.count(AuditRecord) == 1
    assert store.get(Narrative, "h" * 64).text == "Start metformin."
    assert store.audit_page()[0].route == "/cds-services/x"
    store.close()


def test_a_replayed_token_id_is_refused(db_url):
    store = Store(db_url)
    exp = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    assert store.claim_token("https://ehr", "jti-1", exp) is True
    assert store.claim_token("https://ehr", "jti-1", exp) is False
    assert store.claim_token("https://other-ehr", "jti-1", exp) is True
    store.close()


def test_sqlite_runs_in_wal_mode(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'var' / 'x.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    store.close()


def test_upgrade_keeps_rows_written_by_an_older_version(db_url):
    from sqlalchemy import text

    from diaguide.service.migrations import upgrade
    from diaguide.service.store import make_db_engine

    upgrade(db_url, "0001")
    engine = make_db_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO recommendations (id, created_at, channel, record_hash, visit, plan, warnings) "
                "VALUES ('r1', CURRENT_TIMESTAMP, 'rest', 'h', '{}', '{}', '[]')"
            )
        )
    engine.dispose()
    store = Store(db_url)  # startup migrates to head
    from diaguide.service.store import Recommendation

    assert store.get(Recommendation, "r1").plan_source == "guideline"
    store.close()


def test_expired_token_ids_are_swept(db_url):
    store = Store(db_url)
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    assert store.claim_token("https://ehr", "old", past)
    store.purge_tokens()
    assert store.claim_token("https://ehr", "old", past)  # gone: its token is long expired anyway
    store.close()
