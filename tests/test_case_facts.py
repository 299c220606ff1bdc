"""The statistics timelines (`case_fact`, kept by the engine step by step) equal a recomputation from the log.

On a simulated quarter run through the real engine, handlers and timer service: every case's
stored timeline equals the one rebuilt from its task rows and event log, and every figure —
by month, over the quarter, over periods that cut through cases' histories, grouped by unit and
by level, and the monthly assessment with its drill-down — is the same read from the timelines
as read from the records. A case without a row (started before the table existed) is rebuilt.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update

from engine.services import assessment
from engine.services import statistics as st
from engine.store import case_facts
from engine.store.models import Case, CaseFact

SH = ZoneInfo("Asia/Shanghai")
PERIODS = ((date(2025, 1, 1), date(2025, 1, 31)), (date(2025, 2, 1), date(2025, 2, 28)),
           (date(2025, 3, 1), date(2025, 3, 31)), (date(2025, 1, 1), date(2025, 3, 31)),
           (date(2025, 2, 10), date(2025, 2, 20)), (date(2025, 3, 25), date(2025, 4, 2)))


def _assembled(rt, p, from_records: bool, group_by: str) -> dict:
    with rt.db.read() as session:
        facts = st.load_facts(rt, session, p, from_records=from_records)
    return st._assemble(rt, facts, None, group_by, None, None)


def _scores(rt, month: str, from_records: bool) -> list[dict]:
    rules = assessment.parse_rules((rt.processes_dir / assessment.RULES_FILE).read_text(encoding="utf-8"))
    with rt.db.read() as session:
        facts = st.load_facts(rt, session, st.month_period(rt, month), from_records=from_records)
        return assessment._score(rt, session, month, rules, facts)


def test_timelines_equal_a_recomputation_from_the_log_on_a_simulated_quarter(rt, clock):
    from engine.services.simulation import simulate
    from timers import TimerService

    simulate(rt, date(2025, 1, 1), date(2025, 3, 31), 11, TimerService(rt, "sim").run_until_idle,
             cases_total=150)
    clock.set(datetime(2025, 4, 20, 9, tzinfo=SH).astimezone(timezone.utc))
    with rt.db.read() as session:
        ids = list(session.scalars(select(Case.id)))
        stored = dict(session.execute(select(CaseFact.case_id, CaseFact.timeline)).all())
        rebuilt = case_facts.rebuild(session, ids)
    assert len(ids) >= 140 and set(stored) == set(ids)
    assert {i: case_facts.canonical(t) for i, t in stored.items()} == \
        {i: case_facts.canonical(t) for i, t in rebuilt.items()}
    # the quarter exercises what the timelines hold: replies at several levels, ratings, unit hand-offs
    assert sum(len(t["r"]) for t in stored.values()) >= len(ids) * 0.8
    assert {r for t in stored.values() for _, r in t["s"]} >= {"satisfied"}
    assert any(len({u for _, u, _ in t["u"]}) > 1 for t in stored.values())

    for first, last in PERIODS:
        p = st.period(rt, first, last)
        for group_by in ("unit", "level"):
            fast, recomputed = _assembled(rt, p, False, group_by), _assembled(rt, p, True, group_by)
            assert fast == recomputed, (first, last, group_by)
        assert fast["total"]["accepted"] > 0
    for month in ("2025-01", "2025-02", "2025-03"):
        assert _scores(rt, month, False) == _scores(rt, month, True)

    # cases from before the table (no row) and rows in a shape this code does not read: rebuilt from the
    # records, the same figures
    with rt.db.write() as session:
        session.execute(delete(CaseFact).where(CaseFact.case_id.in_(ids[::3])))
        session.execute(update(CaseFact).where(CaseFact.case_id.in_(ids[1::3])).values(timeline={"tasks": []}))
        session.commit()
    p = st.period(rt, date(2025, 1, 1), date(2025, 3, 31))
    assert _assembled(rt, p, False, "unit") == _assembled(rt, p, True, "unit")

    # `flask report timelines` writes exactly those back, as the records have them; a second run writes none
    assert st.backfill_timelines(rt, batch=40) == {"written": len(ids[::3]) + len(ids[1::3])}
    assert st.backfill_timelines(rt) == {"written": 0}
    with rt.db.read() as session:
        stored = dict(session.execute(select(CaseFact.case_id, CaseFact.timeline)).all())
    assert {i: case_facts.canonical(t) for i, t in stored.items()} == \
        {i: case_facts.canonical(t) for i, t in rebuilt.items()}

