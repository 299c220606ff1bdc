"""The batch an engine operation writes its rows with (engine.store.batch): the rows it writes are those the
ORM would have written, the objects are clean afterwards, a stale version is refused, and an error in any
statement rolls the whole unit of work back (on PostgreSQL the statements go through psycopg's pipeline)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from engine import clock
from engine.services import audit
from engine.store.batch import WriteBatch
from engine.store.models import Case, CaseEvent, CaseTask, Outbox
from tests.support import Driver


class _Statements:
    def __init__(self, engine):
        self.engine, self.seen = engine, []
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, *args):
        self.seen.append(statement)

    def close(self):
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


def _task(case_id: int, task_id: str) -> CaseTask:
    return CaseTask(id=task_id, case_id=case_id, bpmn_id="extra", name="附加", lane=None, role=None,
                    unit_code=None, state="ready", created_at=clock.now())


def test_objects_are_written_and_clean_afterwards(rt):
    driver = Driver.start(rt)
    case_no = driver.case["case_no"]
    statements = _Statements(rt.db.engine)
    try:
        with rt.db.write() as s:
            case = s.scalar(sa.select(Case).where(Case.case_no == case_no))
            version = case.version
            case.title = "改过的标题"
            row = _task(case.id, "00000000-0000-4000-8000-000000000001")
            s.add(row)
            batch = WriteBatch(s)
            # One row into a table whose key the database generates: nothing is read back (a pipeline
            # on PostgreSQL could not answer an implicit RETURNING before it syncs).
            batch.execute(sa.insert(Outbox.__table__), [dict(case_id=case.id, channel="sms", recipient_kind="user",
                                                             recipient="u1", message="m", status="pending",
                                                             created_at=clock.now())])
            batch.objects(*s.dirty, *s.new)
            statements.seen.clear()
            batch.send()
            assert len(statements.seen) == 3  # the outbox row, the UPDATE of the case, the INSERT of the task
            assert case.version == version + 1
            assert not s.dirty and not s.new  # clean, as after the ORM's own flush
            statements.seen.clear()
            s.flush()
            assert statements.seen == []  # nothing left for the ORM to write
            assert s.get(CaseTask, row.id) is row and statements.seen == []  # persistent, loaded
            assert row.due_at is None  # every column is loaded: no lazy read
    finally:
        statements.close()
    with rt.db.read() as s:
        case = s.scalar(sa.select(Case).where(Case.case_no == case_no))
        assert (case.title, case.version) == ("改过的标题", version + 1)
        assert s.get(CaseTask, "00000000-0000-4000-8000-000000000001").bpmn_id == "extra"
        assert s.scalar(sa.select(Outbox.kind).where(Outbox.case_id == case.id, Outbox.recipient == "u1")) == "notice"


def _changed_behind_the_orm(s, case_no: str) -> tuple[Case, WriteBatch]:
    """The case loaded, then someone else's write (here on the same connection, past the ORM), then a change."""
    case = s.scalar(sa.select(Case).where(Case.case_no == case_no))
    s.execute(sa.update(Case.__table__).where(Case.__table__.c.id == case.id)
              .values(version=Case.__table__.c.version + 1))
    case.title = "不该写入"
    return case, WriteBatch(s)


def test_a_stale_version_is_refused_and_nothing_is_written(rt):
    driver = Driver.start(rt)
    case_no = driver.case["case_no"]
    with pytest.raises(StaleDataError, match="dispute_case"):
        with rt.db.write() as s:
            case, batch = _changed_behind_the_orm(s, case_no)
            batch.execute(sa.insert(CaseTask.__table__), [
                {c.key: getattr(_task(case.id, "00000000-0000-4000-8000-000000000002"), c.key)
                 for c in CaseTask.__table__.columns}])
            batch.objects(case)
            batch.send()
    with rt.db.read() as s:
        assert s.scalar(sa.select(Case.title).where(Case.case_no == case_no)) != "不该写入"
        assert s.get(CaseTask, "00000000-0000-4000-8000-000000000002") is None


def test_an_error_in_any_statement_rolls_the_unit_of_work_back(rt):
    driver = Driver.start(rt)
    case_no = driver.case["case_no"]
    with rt.db.read() as s:
        case_id, last = s.execute(sa.select(Case.id, Case.last_seq).where(Case.case_no == case_no)).one()
        existing = s.scalar(sa.select(CaseTask.id).where(CaseTask.case_id == case_id))
    with pytest.raises(IntegrityError):
        with rt.db.write() as s:
            case = s.get(Case, case_id)
            case.title = "不该写入"
            batch = WriteBatch(s)
            batch.objects(case)
            batch.execute(sa.insert(CaseTask.__table__), [  # the same id again: refused by the key
                {c.key: getattr(_task(case_id, existing), c.key) for c in CaseTask.__table__.columns}])
            batch.send()
    with rt.db.read() as s:
        assert s.scalar(sa.select(Case.title).where(Case.id == case_id)) != "不该写入"
        assert s.scalar(sa.select(sa.func.max(CaseEvent.seq)).where(CaseEvent.case_id == case_id)) == last
    # The connection went back to the pool in a usable state: the case goes on.
    driver.to_signing()
    assert audit.verify_cases(rt, [case_no])["failed"] == 0


def test_a_row_whose_default_the_orm_fills_is_left_to_the_orm(rt):
    with rt.db.write() as s:
        case = Case(case_no="X-1", title="t")  # its key comes from the database: not the batch's
        batch = WriteBatch(s)
        batch.objects(case)
        batch.send()
        assert sa.inspect(case).transient


def test_a_lone_versioned_update_is_checked_too(rt):
    """A batch of one statement is sent on its own (no pipeline): its row count is still checked."""
    driver = Driver.start(rt)
    case_no = driver.case["case_no"]
    with rt.db.write() as s:
        case = s.scalar(sa.select(Case).where(Case.case_no == case_no))
        case.title = "只改标题"
        batch = WriteBatch(s)
        batch.objects(case)
        batch.send()
    with pytest.raises(StaleDataError):
        with rt.db.write() as s:
            case, batch = _changed_behind_the_orm(s, case_no)
            batch.objects(case)
            batch.send()
    with rt.db.read() as s:
        assert s.scalar(sa.select(Case.title).where(Case.case_no == case_no)) == "只改标题"
