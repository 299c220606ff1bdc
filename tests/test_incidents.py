"""Incidents: a timer that keeps failing retries with backoff, then an incident holds it until a person retries.

And the observed fault: a community under a district without a coordination
office escalated to `district_coordinate` with unit null, a task nobody saw.
The engine now refuses to create it (organisation_gap), records an incident,
and a retry after the organisation is fixed resolves it; the case's log
still verifies.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from engine.errors import OrganisationGap
from engine.services import cases
from engine.services.audit import verify_cases
from engine.services.incident_retry import retry_incident
from engine.services.incidents import list_incidents
from engine.store.models import Case, CaseEvent
from engine.store.timer_models import CaseTimer
from tests.incident_support import GAP_UNIT, dispose, make_app, processes_copy
from tests.support import Driver
from timers import TimerService


@pytest.fixture
def gap_app(db_url, clock, tmp_path):
    app = make_app(db_url, processes_copy(tmp_path, gap=True))
    yield app
    dispose(app)


@pytest.fixture
def gap_rt(gap_app):
    from app import runtime_of

    return runtime_of(gap_app)


@pytest.fixture
def restart(db_url, tmp_path):
    """Restart the app after the organisation is fixed (the full organisation.toml): the new runtime."""
    apps = []

    def _restart():
        from app import runtime_of

        apps.append(make_app(db_url, processes_copy(tmp_path, gap=False)))
        return apps[-1], runtime_of(apps[-1])

    yield _restart
    for app in apps:
        dispose(app)


def run_timers(rt) -> dict:
    return TimerService(rt, "test-worker").run_until_idle()


def timer_rows(rt, case_no: str) -> list[CaseTimer]:
    with rt.db.read() as s:
        rows = s.scalars(select(CaseTimer).join(Case, Case.id == CaseTimer.case_id).where(Case.case_no == case_no)
                         .order_by(CaseTimer.due_at)).all()
        s.expunge_all()
        return rows


def event_types(rt, case_no: str) -> list[str]:
    return [e["type"] for e in cases.case_events(rt, case_no)]


def at_street(rt) -> Driver:
    d = Driver.start(rt)
    d.do("mediate", mediation_result="escalate")
    assert d.open["element"] == "street_coordinate" and d.open["unit"] == "XL-XLJD"
    return d


def open_incidents(rt, **filters) -> list[dict]:
    return list_incidents(rt, None, filters)["items"]


# -- the observed fault, in a request -------------------------------------------------------


def test_a_request_escalating_into_the_gap_is_refused_changes_nothing_and_is_recorded(gap_rt, restart, clock):
    d = at_street(gap_rt)
    case_no = d.case["case_no"]
    before = cases.get_case(gap_rt, case_no)
    events_before = event_types(gap_rt, case_no)
    with pytest.raises(OrganisationGap) as err:
        d.do("street_coordinate", decision="escalate", opinion="街道无法协调，报区综治中心")
    exc = err.value
    assert exc.code == "organisation_gap" and exc.element == "district_coordinate"
    assert "district XL" in exc.message and "coordination_office" in exc.message
    assert exc.to_dict()["gap"].startswith("district_coordination:")
    after = cases.get_case(gap_rt, case_no)
    assert after["version"] == before["version"] and after["open_tasks"] == before["open_tasks"]
    assert event_types(gap_rt, case_no) == events_before + ["incident_opened"]  # only the note

    [incident] = open_incidents(gap_rt)
    assert incident["kind"] == "no_unit" and incident["case_no"] == case_no
    assert incident["element"] == "district_coordinate" and incident["tries"] == 1
    assert incident["error_type"] == "OrganisationGap" and incident["status"] == "open"
    assert incident["details"]["lane"] == "区综治中心" and "XL" in incident["details"]["gap"]
    with pytest.raises(OrganisationGap):  # the same refusal again: the same incident, one more try
        d.do("street_coordinate", decision="escalate", opinion="再次上报")
    [incident] = open_incidents(gap_rt)
    assert incident["tries"] == 2 and incident["last_seen"] >= incident["first_seen"]

    failed = retry_incident(gap_rt, None, incident["id"], "admin")  # nothing fixed yet
    assert failed["outcome"] == "failed" and "XL" in failed["error"] and failed["incident"]["tries"] == 3

    _, fixed = restart()
    done = retry_incident(fixed, None, incident["id"], "admin")
    assert done["outcome"] == "resolved" and done["incident"]["resolved_by"] == "admin"
    assert open_incidents(fixed) == []
    case = cases.complete_task(fixed, d.open["id"], {"decision": "escalate", "opinion": "报区综治中心"}, "leader")
    assert case["open_tasks"][0]["element"] == "district_coordinate"
    assert case["open_tasks"][0]["unit"] == GAP_UNIT
    assert verify_cases(fixed, [case_no])["failed"] == 0


# -- the observed fault, from a timer --------------------------------------------------------


def test_a_timer_escalating_into_the_gap_retries_with_backoff_then_opens_an_incident(gap_app, gap_rt, restart,
                                                                                     clock):
    d = at_street(gap_rt)
    case_no = d.case["case_no"]
    warn, due = (datetime.fromisoformat(d.open[k]) for k in ("warn_at", "due_at"))
    clock.set(warn + timedelta(minutes=1))
    run_timers(gap_rt)  # the yellow light fires fine
    clock.set(due + timedelta(minutes=1))
    run_timers(gap_rt)  # the deadline escalates into the gap: rolled back, tried again later
    [row] = timer_rows(gap_rt, case_no)
    assert row.element == "due_street_coordinate" and row.tries == 1
    assert row.retry_at == clock.now() + timedelta(seconds=30) and row.incident_id is None
    assert event_types(gap_rt, case_no).count("timer_fired") == 1
    assert cases.get_case(gap_rt, case_no)["open_tasks"][0]["element"] == "street_coordinate"

    listed = gap_app.test_cli_runner().invoke(args=["timers", "list"])
    assert f"failed 1x, next try {row.retry_at.isoformat()}" in listed.output
    run_timers(gap_rt)  # not yet time for the next try
    assert timer_rows(gap_rt, case_no)[0].tries == 1
    for tries, wait in ((2, 30), (3, 120), (4, 600)):
        clock.advance(seconds=wait)
        run_timers(gap_rt)
        row = timer_rows(gap_rt, case_no)[0]
        assert row.tries == tries and open_incidents(gap_rt) == []
    clock.advance(seconds=3600)
    run_timers(gap_rt)  # the fifth try fails: an incident holds the timer
    [row] = timer_rows(gap_rt, case_no)
    [incident] = open_incidents(gap_rt)
    assert row.incident_id == incident["id"] and row.retry_at is None
    assert incident["kind"] == "no_unit" and incident["source"] == f"timer:{row.id}"
    assert incident["element"] == "district_coordinate" and incident["tries"] == 5
    assert incident["details"]["timer"] == "due_street_coordinate" and "coordination_office" in incident["error"]
    assert incident["first_seen"] == incident["last_seen"] == clock.now().isoformat()

    listed = gap_app.test_cli_runner().invoke(args=["timers", "list"])
    assert f"held by incident #{incident['id']}" in listed.output
    clock.advance(days=3)
    assert run_timers(gap_rt).get("failed") is None  # held: the workers leave it alone, and it stays recorded
    assert timer_rows(gap_rt, case_no)[0].tries == 5 and open_incidents(gap_rt)[0]["tries"] == 5
    assert event_types(gap_rt, case_no).count("timer_fired") == 1

    _, fixed = restart()
    result = retry_incident(fixed, None, incident["id"], "admin")
    assert result["outcome"] == "resolved" and result["incident"]["status"] == "resolved"
    case = cases.get_case(fixed, case_no)
    assert case["open_tasks"][0]["element"] == "district_coordinate" and case["open_tasks"][0]["unit"] == GAP_UNIT
    types = event_types(fixed, case_no)
    assert types.count("timer_fired") == 2 and types[-1] == "incident_resolved"
    assert all(r.incident_id is None and r.tries == 0 for r in timer_rows(fixed, case_no))
    assert verify_cases(fixed, [case_no])["failed"] == 0


# -- any failing timer, with its own retry settings --------------------------------------------


def test_a_raising_handler_opens_a_timer_incident_and_a_retry_after_the_fix_resolves_it(rt, clock, monkeypatch):
    monkeypatch.setenv("TIMER_RETRY_DELAYS", "10")
    monkeypatch.setenv("TIMER_MAX_TRIES", "2")
    real = rt.handlers["yellow_light"]

    def broken(ctx, params, data):
        raise RuntimeError("SMS gateway misconfigured")

    rt.handlers["yellow_light"] = broken
    d = Driver.start(rt)
    d.to_signing()
    clock.set(datetime.fromisoformat(d.open["warn_at"]) + timedelta(minutes=1))
    run_timers(rt)
    assert open_incidents(rt) == []
    clock.advance(seconds=10)
    run_timers(rt)
    [incident] = open_incidents(rt, kind="timer")
    assert incident["tries"] == 2 and incident["element"] == "yellow_unit_sign_for"
    assert "SMS gateway misconfigured" in incident["error"] and incident["error_type"] == "HandlerFailed"

    failed = retry_incident(rt, None, incident["id"], "designer")  # still broken
    assert failed["outcome"] == "failed" and failed["incident"]["tries"] == 3

    rt.handlers["yellow_light"] = real
    assert retry_incident(rt, None, incident["id"], "designer")["outcome"] == "resolved"
    assert "timer_fired" in event_types(rt, d.case["case_no"])
    assert open_incidents(rt, status="resolved")[0]["resolved_by"] == "designer"
    assert verify_cases(rt, [d.case["case_no"]])["failed"] == 0


def test_a_retry_fires_the_replacement_timers_when_the_held_one_is_gone(rt, clock, monkeypatch):
    """A migration replaces the case's timer rows (sync_timers): a retry then fires the case's due timers."""
    monkeypatch.setenv("TIMER_MAX_TRIES", "1")
    real = rt.handlers["yellow_light"]
    rt.handlers["yellow_light"] = lambda ctx, params, data: 1 / 0
    d = Driver.start(rt)
    d.to_signing()
    clock.set(datetime.fromisoformat(d.open["warn_at"]) + timedelta(minutes=1))
    run_timers(rt)
    [incident] = open_incidents(rt)
    assert incident["error_type"] == "HandlerFailed" and "division by zero" in incident["error"]
    with rt.db.write() as s:  # what a migration does to the rows: the old one goes, a fresh one comes
        old = s.scalars(select(CaseTimer).where(CaseTimer.incident_id == incident["id"])).one()
        s.delete(old)
        s.flush()
        s.add(CaseTimer(case_id=old.case_id, task_id=old.task_id, element=old.element, kind=old.kind,
                        attached_task_id=old.attached_task_id, due_at=old.due_at, created_at=old.created_at))
    rt.handlers["yellow_light"] = real
    assert retry_incident(rt, None, incident["id"], "admin")["outcome"] == "resolved"
    with rt.db.read() as s:
        assert s.scalars(select(CaseEvent.type).where(CaseEvent.type == "timer_fired")).all() == ["timer_fired"]
    assert verify_cases(rt, [d.case["case_no"]])["failed"] == 0


# -- the command line -------------------------------------------------------------------------


def test_cli_lists_and_retries_with_messages_not_tracebacks(gap_app, gap_rt, restart, clock):
    d = at_street(gap_rt)
    with pytest.raises(OrganisationGap):
        d.do("street_coordinate", decision="escalate", opinion="报区综治中心")
    runner = gap_app.test_cli_runner()
    listed = runner.invoke(args=["incidents", "list"])
    assert listed.exit_code == 0, listed.output
    assert "no_unit" in listed.output and "district_coordinate" in listed.output
    assert "1 open incident(s)" in listed.output
    [incident] = open_incidents(gap_rt)

    again = runner.invoke(args=["incidents", "retry", str(incident["id"])])
    assert again.exit_code == 1 and "retry failed again" in again.output and "Traceback" not in again.output
    missing = runner.invoke(args=["incidents", "retry", "999999"])
    assert missing.exit_code == 1 and "incident 999999 does not exist" in missing.output
    assert missing.exception is None or isinstance(missing.exception, SystemExit)
    bad = runner.invoke(args=["incidents", "list", "--status", "closed"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output

    fixed_app, _ = restart()
    fixed_runner = fixed_app.test_cli_runner()
    done = fixed_runner.invoke(args=["incidents", "retry", str(incident["id"]), "--actor", "ops"])
    assert done.exit_code == 0 and f"incident {incident['id']}: resolved" in done.output
    twice = fixed_runner.invoke(args=["incidents", "retry", str(incident["id"])])
    assert twice.exit_code == 1 and "already resolved" in twice.output
    listed = fixed_runner.invoke(args=["incidents", "list", "--status", "resolved"])
    assert "resolved" in listed.output and "1 resolved incident(s)" in listed.output
    verified = fixed_runner.invoke(args=["audit", "verify", d.case["case_no"]])
    assert verified.exit_code == 0, verified.output


# -- the record itself --------------------------------------------------------------------------


def test_concurrent_reports_of_one_failure_make_one_incident(rt, clock):
    """The interface the outbox worker calls in its own transaction: one open incident per (kind, source)."""
    import threading

    from engine.services.incidents import open_or_bump_incident

    d = Driver.start(rt)
    with rt.db.read() as s:
        case_id = s.scalar(select(Case.id).where(Case.case_no == d.case["case_no"]))
    barrier, errors = threading.Barrier(4), []

    def report(i):
        try:
            barrier.wait(timeout=10)
            with rt.db.write() as s:
                open_or_bump_incident(s, kind="notification", source="outbox:7", case_id=case_id, element=None,
                                      error=f"gateway said 503 ({i})", now=clock.now())
        except Exception as exc:  # collected: the test fails naming it
            errors.append(exc)

    threads = [threading.Thread(target=report, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    [incident] = open_incidents(rt, kind="notification")
    assert incident["tries"] == 4 and incident["source"] == "outbox:7" and incident["case_no"] == d.case["case_no"]
    assert event_types(rt, d.case["case_no"]).count("incident_opened") == 1
    assert verify_cases(rt, [d.case["case_no"]])["failed"] == 0


def test_when_a_migration_replaced_the_held_timer_the_workers_firing_resolve_the_incident(rt, clock, monkeypatch):
    monkeypatch.setenv("TIMER_MAX_TRIES", "1")
    rt.handlers["yellow_light"], real = (lambda ctx, params, data: 1 / 0), rt.handlers["yellow_light"]
    d = Driver.start(rt)
    d.to_signing()
    clock.set(datetime.fromisoformat(d.open["warn_at"]) + timedelta(minutes=1))
    run_timers(rt)
    [incident] = open_incidents(rt)
    with rt.db.write() as s:  # the migration's sync_timers: the held row goes, a fresh one comes
        old = s.scalars(select(CaseTimer).where(CaseTimer.incident_id == incident["id"])).one()
        s.delete(old)
        s.flush()
        s.add(CaseTimer(case_id=old.case_id, task_id=old.task_id, element=old.element, kind=old.kind,
                        attached_task_id=old.attached_task_id, due_at=old.due_at, created_at=old.created_at))
    rt.handlers["yellow_light"] = real
    assert run_timers(rt)["fired"] == 1
    assert open_incidents(rt) == []
    [resolved] = open_incidents(rt, status="resolved")
    assert resolved["resolved_by"] == "test-worker" and "no longer waits" in resolved["resolution"]
    assert event_types(rt, d.case["case_no"])[-1] == "incident_resolved"
    assert verify_cases(rt, [d.case["case_no"]])["failed"] == 0
