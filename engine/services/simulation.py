"""A simulated period (what-if) driven through the real engine, handlers and timer service.

`simulate` generates disputes (arrival instants, category, channel, community) from a
profile (`processes/simulation.toml`), registers each with `start_case`, and has synthetic
handlers complete every open step after a delay drawn from the profile, on the virtual
clock: a discrete-event loop that moves the one injectable clock (engine.clock) straight
to the next thing that happens — an arrival, a handler's action, or the next due timer,
which the caller's timer driver (the real timer service) then fires. A step the profile
leaves late is simply not done: its timers turn it yellow and red and climb the ladder
exactly as in production. Same seed, same profile, same figures.

It ends with the statistics of the period and the monthly assessment of each month (the
same functions the API shows) and a forecast per unit for the next month at that load.
"""
from __future__ import annotations

import heapq
import itertools
import random
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import func, select

from engine import clock
from engine.errors import Conflict, InvalidInput, NotFound
from engine.rules.intake import CHANNELS
from engine.services import assessment, cases, statistics
from engine.store.models import Case, CaseTask
from engine.store.org_models import AppUser, UserRole
from engine.store.timer_models import CaseTimer

PROFILE_FILE = "simulation.toml"
# The steps of the category procedures' special parts, completed the usual way (the main path of each).
FIXED_FORMS = {
    "consolidate": {"result": "已会同协办单位办理", "measures": "联合处置"},
    "co_handle": {"co_opinion": "协办意见"},
    "inspect": {"inspection_findings": "现场核查", "violation": "yes"},
    "rectification_notice": {"notice_no": "整改通知", "rectification_items": "限期整改",
                             "rectification_deadline": "2025-12-31"},
    "reinspect": {"reinspection_result": "passed", "reinspection_note": "整改到位"},
    "eligibility_check": {"eligible": "yes", "eligibility_basis": "符合条件"},
    "legal_review": {"legal_opinion": "compliant", "legal_basis": "依法依规"},
    "accept_mediation": {"acceptance": "accept"},
    "record_agreement": {"agreement_text": "达成调解协议", "judicial_confirmation": False},
    "convene_reception": {"co_units": ["YC-RSJ"], "lawyer_name": "律师", "lawyer_org": "律师事务所",
                          "reception_date": "2025-12-31"},
    "joint_reception": {"participants": "相关部门、律师", "conclusion": "联合接访答复", "measures": "落实措施"},
    "assignment_ruling": {"ruling": "依法终结"},
}
HOURS_OF = {"mediate": "mediation_hours", "sign_for": "sign_for_hours", "handle": "handling_hours",
            "approve": "approval_hours", "evaluate": "evaluation_hours"}
LADDER_STEPS = ("street_coordinate", "district_coordinate", "city_coordinate", "joint_meeting")
ACTOR = "simulation"


# -- the profile ---------------------------------------------------------------------------------


def load_profile(path: Path, routes) -> dict:
    """The profile, checked: categories of routing.toml, known channels, probabilities in [0, 1]."""
    try:
        profile = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"{path}: {exc}", errors={"profile": [str(exc)]})
    problems = [f"[categories] {c}: not a category of routing.toml" for c in profile.get("categories", {})
                if c not in routes]
    problems += [f"[channels] {c}: not an intake channel" for c in profile.get("channels", {}) if c not in CHANNELS]
    base = profile.get("behaviour", {})
    for name, table in [("behaviour", base)] + [(f"behaviour.{k}", v) for k, v in base.items() if isinstance(v, dict)]:
        for key, value in table.items():
            if isinstance(value, float) and not 0 <= value <= 1:
                problems.append(f"[{name}] {key}: a probability must be within 0..1")
            if isinstance(value, list) and (len(value) != 2 or not 0 <= value[0] <= value[1]):
                problems.append(f"[{name}] {key}: expected [low, high] working hours")
    if not profile.get("categories") or not profile.get("channels"):
        problems.append("[categories] and [channels] must weigh at least one entry each")
    if problems:
        raise InvalidInput(f"{path}: {len(problems)} problem(s)", errors={"profile": problems})
    return profile


def _behaviour(profile: dict, category: str) -> dict:
    base = {k: v for k, v in profile["behaviour"].items() if not isinstance(v, dict)}
    return {**base, **profile["behaviour"].get(category, {})}


# -- the run -----------------------------------------------------------------------------------------


@dataclass(order=True)
class _Event:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    payload: dict = field(compare=False)


class _Run:
    def __init__(self, rt, profile: dict, seed: int, fire_due, virtual: clock.ManualClock):
        self.rt = rt
        self.clock = virtual
        self.profile = profile
        self.random = random.Random(seed)
        self.fire_due = fire_due
        self.agenda: list[_Event] = []
        self.seq = itertools.count()
        self.scheduled: set[str] = set()
        self.counts: dict[str, int] = defaultdict(int)
        self.communities = sorted(u.code for u in rt.tables.units.values() if u.kind == "community")
        self.handlers: dict[str, list[str]] | None = None  # unit -> its users who may hold a handler's task

    def push(self, at: datetime, kind: str, **payload) -> None:
        heapq.heappush(self.agenda, _Event(at, next(self.seq), kind, payload))

    def pick(self, weights: dict) -> str:
        keys = sorted(weights)
        return self.random.choices(keys, weights=[weights[k] for k in keys])[0]

    def arrivals(self, start: datetime, end: datetime, n: int) -> None:
        span = (end - start).total_seconds()
        for _ in range(n):
            self.push(start + timedelta(seconds=self.random.uniform(0, span)), "arrive")

    # -- acting ---------------------------------------------------------------------------------

    def arrive(self) -> None:
        category = self.pick(self.profile["categories"])
        n = next(self.seq)
        intake = {
            "title": f"模拟纠纷 {n}", "description": "模拟运行生成的矛盾纠纷（非真实数据）", "category": category,
            "channel": self.pick(self.profile["channels"]),
            "reporter": {"name": "模拟群众", "phone": f"139{self.random.randrange(10 ** 8):08d}", "id_no": None},
            "location": {"address": "模拟地址", "grid": None}, "community": self.random.choice(self.communities),
        }
        self.after(cases.start_case(self.rt, intake, ACTOR))
        self.counts["cases"] += 1

    def after(self, case: dict) -> None:
        for task in case.get("open_tasks", []):
            self.plan(task, case["category"])

    def plan(self, task: dict, category: str) -> None:
        if task["id"] in self.scheduled:
            return
        self.scheduled.add(task["id"])
        b = _behaviour(self.profile, category)
        if self.random.random() < b["late"]:
            self.counts["left_late"] += 1
            return  # nobody acts: the deadline timers take over
        low, high = b[HOURS_OF.get(task["element"], "ladder_hours")]
        when = self.rt.calendar.add_working_hours(clock.now(), self.random.uniform(low, high)).at
        self.push(when, "complete", task=task["id"], element=task["element"], category=category,
                  unit=task.get("unit"))

    def handler_of(self, unit: str | None) -> str:
        """A handler of the unit (the sign-for names one who must be), or a name when the unit has no accounts."""
        if self.handlers is None:
            roles = self.rt.tables.holders_of("handler")
            self.handlers = defaultdict(list)
            with self.rt.db.read() as session:
                for code, username in session.execute(
                        select(AppUser.unit_code, AppUser.username).where(AppUser.active.is_(True), AppUser.id.in_(
                            select(UserRole.user_id).where(UserRole.role.in_(sorted(roles)))))
                        .order_by(AppUser.unit_code, AppUser.username)):
                    self.handlers[code].append(username)
        return self.handlers[unit][0] if self.handlers.get(unit) else "承办人"

    def complete(self, task_id: str, element: str, category: str, unit: str | None = None) -> None:
        data = self.form(element, _behaviour(self.profile, category), unit)
        try:
            case = cases.complete_task(self.rt, task_id, data, ACTOR)
        except (NotFound, Conflict):  # the step is gone (a timer cancelled it meanwhile): nothing to do
            self.counts["overtaken"] += 1
            return
        except InvalidInput as exc:  # a form the procedure refuses is the profile's fault: say so, never skip
            raise InvalidInput(f"the simulation's {element!r} form was refused: {exc}",
                               errors={"profile": [f"{element}: {exc.errors or exc}"]}) from exc
        self.counts["steps"] += 1
        self.after(case)

    def form(self, element: str, b: dict, unit: str | None = None) -> dict:
        r = self.random.random()
        if element == "mediate":
            if r < b["resolve_at_community"]:
                return {"mediation_result": "resolved", "mediation_note": "社区调解成功"}
            return {"mediation_result": "escalate" if r > 1 - b["escalate_from_community"] else "unresolved"}
        if element in ("sign_for", "co_sign_for"):
            return {"decision": "accept", "responsible_section": "承办科室", "responsible_person": self.handler_of(unit)}
        if element == "mediation_session":  # the docked mediation body: an agreement, or litigation
            agreed = r < b.get("docking_agrees", 0.7)
            return {"session_date": clock.now().astimezone(self.rt.calendar.tz).date().isoformat(),
                    "participants": "双方当事人", "session_notes": "调解会", "doctor": "医生", "lawyer": "律师",
                    "mediator": "调解员", "session_result": "agreement" if agreed else "litigation",
                    "four_in_one": "people" if agreed else "judicial"}
        if element in FIXED_FORMS:
            return dict(FIXED_FORMS[element])
        if element == "handle":
            return {"result": "已办理", "measures": "现场核实，协调处理"}
        if element == "approve":
            return ({"decision": "return", "return_reason": "请补充材料"} if r < b["returned"]
                    else {"decision": "approve"})
        if element == "evaluate":
            return {"rating": "dissatisfied", "rating_comment": "未解决"} if r < b["dissatisfied"] else {
                "rating": self.pick({"satisfied": 92, "basically_satisfied": 8})}
        if element == "review":
            return {"instructions": "督办整改"}
        if element == "decide":
            return {"ruling": "依法终结"}
        if element in LADDER_STEPS:
            escalate = element != "joint_meeting" and r >= b["ladder_resolves"]
            return {"decision": "escalate" if escalate else "resolve", "opinion": "协调意见"}
        raise InvalidInput(f"the simulation has no handler behaviour for step {element!r}",
                           errors={"profile": [f"no behaviour for {element}"]})

    # -- the loop -------------------------------------------------------------------------------

    def next_timer(self) -> datetime | None:
        # Asked before every event of the agenda: one indexed MIN on a plain connection, not a unit of
        # work (which would also check the organisation's version stamp each time).
        with self.rt.db.engine.connect() as conn:
            return conn.scalar(select(func.min(CaseTimer.due_at)))

    def fire_until(self, until: datetime) -> None:
        while (due := self.next_timer()) is not None and due < until:
            # SpiffWorkflow fires a timer strictly after its instant (`due < now`)
            self.clock.set(max(due + timedelta(milliseconds=1), clock.now()))
            fired_at = clock.now()
            self.fire_due()
            self.counts["timer_rounds"] += 1
            self.plan_new_tasks(fired_at)

    def plan_new_tasks(self, since: datetime) -> None:
        """Steps the timers opened (a ladder level after an overdue one) get their synthetic handler too:
        the ready steps created by this round (not every ready step of the city, round after round)."""
        with self.rt.db.read() as session:
            rows = session.execute(select(CaseTask.id, CaseTask.bpmn_id, Case.category)
                                   .join(Case, Case.id == CaseTask.case_id)
                                   .where(CaseTask.state == "ready", CaseTask.created_at >= since)
                                   .order_by(CaseTask.created_at, CaseTask.id)).all()
        for r in rows:
            if r.id not in self.scheduled:
                self.plan({"id": r.id, "element": r.bpmn_id}, r.category)

    def run(self, end: datetime) -> None:
        while self.agenda and self.agenda[0].at < end:
            event = heapq.heappop(self.agenda)
            self.fire_until(event.at)
            self.clock.set(max(event.at, clock.now()))
            if event.kind == "arrive":
                self.arrive()
            else:
                self.complete(event.payload["task"], event.payload["element"], event.payload["category"],
                              event.payload.get("unit"))
        self.fire_until(end)
        self.clock.set(max(end, clock.now()))


# -- the use case -----------------------------------------------------------------------------------


def _months(first: date, last: date) -> list[str]:
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def forecast(rt, months: list[str]) -> list[dict]:
    """Per unit, for the month after the run: expected red lights (the mean of the last three simulated
    months) and expected backlog (the backlog at the end plus the mean monthly net inflow of the last three)."""
    last = months[-3:]
    stats_by_month = [statistics.compute_statistics(rt, None, statistics.month_period(rt, m), group_by="unit")
                      for m in last]
    rows: dict[str, dict] = defaultdict(lambda: {"red": [], "net": [], "backlog": 0})
    for s in stats_by_month:
        for g in s["groups"]:
            rows[g["key"]]["red"].append(g["red_lights"])
            rows[g["key"]]["net"].append(g["accepted"] - g["completed"])
    for g in stats_by_month[-1]["groups"]:
        rows[g["key"]]["backlog"] = sum(g["backlog_by_age"].values())
    out = []
    for unit, r in sorted(rows.items()):
        red = sum(r["red"]) / len(last)
        net = sum(r["net"]) / len(last)
        out.append({"unit": unit, "name": rt.tables.units[unit].name if unit in rt.tables.units else unit,
                    "expected_red_lights": round(red, 1), "expected_backlog": max(0, round(r["backlog"] + net))})
    return out


def count_cases(rt) -> int:
    """How many cases the database holds (a simulation runs into an empty one)."""
    with rt.db.read() as session:
        return session.scalar(select(func.count()).select_from(Case))


def simulate(rt, first: date, last: date, seed: int, fire_due, cases_total: int | None = None,
             profile_path: Path | None = None) -> dict:
    """Run the period [first, last] through the engine; return what happened, the figures, the assessments."""
    if last < first:
        raise InvalidInput("the period ends before it starts", errors={"to": ["must not be before 'from'"]})
    profile = load_profile(profile_path or rt.processes_dir / PROFILE_FILE, rt.tables.routes)
    start = datetime.combine(first, time(), rt.tz)
    end = datetime.combine(last + timedelta(days=1), time(), rt.tz)
    months = _months(first, last)
    n = cases_total if cases_total is not None else round(profile["arrivals"]["per_month"] * len(months))
    virtual = clock.ManualClock(start)
    run = _Run(rt, profile, seed, fire_due, virtual)
    run.arrivals(start, end, n)
    with clock.using_clock(virtual):
        assessment.deploy_rules(rt, ACTOR)
        run.run(end)
        whole = statistics.compute_statistics(rt, None, statistics.period(rt, first, last), group_by="unit")
        monthly = [assessment.monthly_assessment(rt, m) for m in months]
        return {"seed": seed, "from": first.isoformat(), "to": last.isoformat(), "arrivals": n,
                "activity": dict(sorted(run.counts.items())), "statistics": whole,
                "assessments": [{"month": a["month"], "statistics": a["statistics"],
                                 "units": [{k: u[k] for k in ("unit", "peer_group", "score", "rank")}
                                           for u in a["units"]]} for a in monthly],
                "forecast": forecast(rt, months)}
