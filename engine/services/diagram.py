"""The case's procedure diagram, with its path, current steps and late steps marked.

One read: the case (in the caller's scope, else not found), the BPMN its
definition was deployed from, the elements its event log shows it passed
(engine.core.diagram.path_taken: where it arrived and left, in order), and its open task rows. The drawing itself is `engine.core.diagram`; the CSS
classes it gets here are `passed` (completed, and the flows between reached
elements), `current` (an open task) and `late` (an open task past due). A procedure that
calls shared sub-procedures (call activities) comes with a drawing of each, at the
version the case is pinned to, marked from the same log (`called`).
"""
from __future__ import annotations

from sqlalchemy import select

from engine.core.diagram import call_activities, element_ids, path_taken, render_svg
from engine.services.cases import find_case
from engine.services.views import open_rows_by_case, task_view
from engine.store.models import CaseEvent, ProcessDefinition

# The events that say the case reached an element, and those that say it left one.
ARRIVING = ("task_ready", "service_called")
LEAVING = ("task_completed", "service_called", "timer_fired")


def case_diagram(rt, case_no: str, user=None) -> dict:
    with rt.db.read() as session:
        return diagram_of(session, find_case(rt, session, case_no, user))


def diagram_of(session, case, events=None, open_rows=None) -> dict:
    """The diagram of a case already found in the caller's scope (`events`, `open_rows`: when loaded already)."""
    row = session.get(ProcessDefinition, case.definition_id)
    if events is None:
        events = session.execute(select(CaseEvent.seq, CaseEvent.type, CaseEvent.element, CaseEvent.payload)
                                 .where(CaseEvent.case_id == case.id)).all()
    if open_rows is None:
        open_rows = open_rows_by_case(session, [case.id])[case.id]
    arrivals, departures = [], []
    for e in events:
        if e.element and e.type in ARRIVING:
            arrivals.append((e.seq, e.element))
        if e.element and e.type in LEAVING:
            departures.append((e.seq, e.element))
        if e.type == "case_completed" and isinstance(e.payload, dict) and e.payload.get("end"):
            arrivals.append((e.seq, e.payload["end"]))
    open_views = [task_view(r) for r in open_rows]
    current = {t["element"] for t in open_views}
    late = {t["element"] for t in open_views if t["light"] == "red"}
    warned = {t["element"] for t in open_views if t["light"] == "yellow"}
    # The shared sub-procedures it calls (at the versions this version embeds), each drawn the same way;
    # a call activity counts as reached and left when the log shows the case inside its sub-procedure.
    subs = [session.scalar(select(ProcessDefinition).where(ProcessDefinition.process_id == callee,
                                                            ProcessDefinition.version == version))
            for callee, version in sorted((row.calls or {}).items())]
    subs = [sub for sub in subs if sub is not None]
    inside: dict[str, list[int]] = {}
    for sub in subs:
        ids = element_ids(sub.bpmn_xml)
        inside[sub.process_id] = [seq for seq, element in arrivals + departures if element in ids]
    for call_id, callee in call_activities(row.bpmn_xml).items():
        if inside.get(callee):
            arrivals.append((min(inside[callee]), call_id))
            departures.append((max(inside[callee]), call_id))
    arrivals.sort()
    departures.sort()
    drawn = _draw(row, arrivals, departures, current, late, warned)
    called = [{"process_id": sub.process_id, "version": sub.version, "name": sub.name,
               **_draw(sub, arrivals, departures, current, late, warned)} for sub in subs]
    passed = set(drawn.pop("passed")).union(*(c.pop("passed") for c in called))
    return {"case_no": case.case_no, "process_id": row.process_id, "version": row.version, "svg": drawn["svg"],
            "called": called, "passed": sorted(passed), "current": sorted(current), "late": sorted(late)}


def _draw(row: ProcessDefinition, arrivals, departures, current: set, late: set, warned: set) -> dict:
    passed, flows = path_taken(row.bpmn_xml, arrivals, departures, row.process_id)
    passed -= current
    classes: dict[str, set[str]] = {}
    for name, ids in (("passed", passed | flows), ("current", current),
                      ("late", late), ("warned", warned)):
        for element in ids:
            classes.setdefault(element, set()).add(name)
    return {"svg": render_svg(row.bpmn_xml, classes, row.process_id), "passed": passed}
