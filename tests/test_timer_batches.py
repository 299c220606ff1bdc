"""A timer worker fires due timers of several cases in one transaction: one commit for the batch, a failing
firing rolled back alone (and recorded for its retry), the others fired once; never one case twice a batch."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import event, func, select

from engine.core.timers import claim_timers
from engine.store.models import CaseEvent
from engine.store.timer_models import CaseTimer
from tests.support import Driver
from timers import TimerService


def test_a_batch_is_one_commit_and_a_failing_firing_stays_its_own(rt, clock):
    drivers = [Driver.start(rt) for _ in range(5)]
    for d in drivers:
        d.to_signing()
    clock.set(datetime.fromisoformat(drivers[0].open["warn_at"]) + timedelta(minutes=1))  # the warnings are due
    real, calls = rt.handlers["yellow_light"], []

    def flaky(ctx, params, data):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the first warning of the batch fails")
        return real(ctx, params, data)

    rt.handlers["yellow_light"] = flaky
    service = TimerService(rt, "batcher", fire_batch=8)
    ids = [timer_id for timer_id, _due, _case in claim_timers(rt, "batcher", until=clock.now(), limit=100)]
    assert len(ids) == 5
    commits = []

    def count(_conn):
        commits.append(1)

    event.listen(rt.db.engine, "commit", count)
    try:
        outcomes = service._fire_many(ids)
    finally:
        event.remove(rt.db.engine, "commit", count)
    assert sorted(outcomes) == ["failed", "fired", "fired", "fired", "fired"], outcomes
    assert len(commits) == 1
    with rt.db.read() as s:
        fired = s.scalars(select(CaseEvent.task_id).where(CaseEvent.type == "timer_fired")).all()
        failed = s.execute(select(CaseTimer.id, CaseTimer.retry_at).where(CaseTimer.tries > 0)).all()
        left = s.scalar(select(func.count()).select_from(CaseTimer).where(CaseTimer.id.in_(ids)))
    assert len(fired) == len(set(fired)) == 4
    assert [t.id for t in failed] == [ids[outcomes.index("failed")]] and failed[0].retry_at is not None
    assert left == 1  # the failed one waits for its retry; the fired ones are gone


def test_a_batch_takes_due_items_of_different_cases_in_queue_order(rt):
    service = TimerService(rt, "batcher", fire_batch=3)
    for item in [(0, None, 1, 11, "a"), (0, None, 2, 12, "b"), (0, None, 3, 13, "b"), (0, None, 4, 14, "c")]:
        service._queue.put(item)
    first = service._queue.get_nowait()
    assert [i[3] for i in service._batch(first)] == [11, 12]  # case b twice: its second timer waits
    assert [i[3] for i in service._batch(service._queue.get_nowait())] == [13, 14]
    assert service._queue.empty()
    assert TimerService(rt, "x").fire_batch == 1  # TIMER_FIRE_BATCH unset: one timer a transaction
