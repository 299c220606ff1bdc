"""The monthly assessment of units (月度考核通报): scores, ranks, drill-down, and closing a month.

The rules live in `processes/assessment.toml` (weights, peer groups); every distinct content
of that file is stored as an immutable numbered version (`deploy_rules`), and a month is
scored by the newest version in force then (`effective_from` not after the month). Scores
use the figures of `engine.services.statistics` — the same functions the statistics API
shows — over each unit's own cases and steps of the month. A month is closed once
(`close_month`): its assessment and figures are stored, frozen, with a sha256 over them.
"""
from __future__ import annotations

import hashlib
import json
import re
import tomllib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine import clock
from engine.errors import Conflict, InvalidInput, NotFound
from engine.services import statistics as st
from engine.store.report_models import AssessmentRules, MonthlyReport

RULES_FILE = "assessment.toml"
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
KINDS = ("rate", "count")


# -- rules ----------------------------------------------------------------------------------


def parse_rules(source: str, where: str = RULES_FILE) -> dict:
    """The rules of one version, checked: every problem names the item and the field."""
    try:
        rules = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{where}: not valid TOML: {exc}", errors={where: [str(exc)]})
    problems: list[str] = []
    if not MONTH.match(str(rules.get("effective_from", ""))):
        problems.append("effective_from: expected 'YYYY-MM'")
    if not isinstance(rules.get("base"), (int, float)) or rules["base"] <= 0:
        problems.append("base: expected a positive number")
    peers = rules.get("peers")
    if not isinstance(peers, dict) or not peers or not all(
            isinstance(v, list) and v and all(isinstance(k, str) for k in v) for v in peers.values()):
        problems.append("[peers]: expected groups of unit kinds, e.g. street = [\"street\"]")
    items = rules.get("deductions")
    if not isinstance(items, list) or not items:
        problems.append("[[deductions]]: at least one item")
        items = []
    for i, item in enumerate(items, 1):
        name = f"[[deductions]] #{i} ({item.get('figure', '?')})"
        kind = item.get("kind")
        if kind not in KINDS:
            problems.append(f"{name}: kind must be one of {', '.join(KINDS)}")
        elif item.get("figure") not in (st.RATES if kind == "rate" else st.COUNTS):
            allowed = sorted(st.RATES if kind == "rate" else st.COUNTS)
            problems.append(f"{name}: figure must be a {kind} figure: {', '.join(allowed)}")
        if not isinstance(item.get("points"), (int, float)) or item["points"] <= 0:
            problems.append(f"{name}: points must be a positive number")
        if "cap" in item and (not isinstance(item["cap"], (int, float)) or item["cap"] <= 0):
            problems.append(f"{name}: cap must be a positive number")
        if not isinstance(item.get("label"), str) or not item["label"]:
            problems.append(f"{name}: label is required")
    if problems:
        raise InvalidInput(f"{where}: {len(problems)} problem(s)", errors={where: problems})
    return rules


def deploy_rules(rt, actor: str = "cli") -> dict:
    """Store the current rules file as a new version if its content is new (idempotent)."""
    source = (rt.processes_dir / RULES_FILE).read_text(encoding="utf-8")
    rules = parse_rules(source)
    digest = hashlib.sha256(source.encode()).hexdigest()
    with rt.db.write() as session:
        found = session.scalar(select(AssessmentRules).where(AssessmentRules.sha256 == digest))
        if found is not None:
            return {"version": found.version, "effective_from": found.effective_from, "new": False}
        last = session.scalar(select(AssessmentRules.version).order_by(AssessmentRules.version.desc()).limit(1))
        row = AssessmentRules(version=(last or 0) + 1, sha256=digest, effective_from=rules["effective_from"],
                              source=source, deployed_at=clock.now(), deployed_by=actor)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # another process stored the same content at the same moment
            session.rollback()
            return deploy_rules(rt, actor)
        return {"version": row.version, "effective_from": row.effective_from, "new": True}


def _rules_for(session, month: str) -> AssessmentRules:
    rows = session.scalars(select(AssessmentRules).order_by(AssessmentRules.version.desc())).all()
    for row in rows:
        if row.effective_from <= month:
            return row
    raise Conflict(f"no assessment rules in force in {month}",
                   errors={"month": [f"the earliest rules apply from {rows[-1].effective_from}" if rows
                                     else "no rules deployed: flask report rules"]})


# -- scoring ----------------------------------------------------------------------------------


def _check_month(month: str) -> str:
    """A month is named YYYY-MM; any other name names no report (404, as an unknown path is)."""
    if not isinstance(month, str) or not MONTH.match(month):
        raise NotFound(f"no such month: {month!r} (expected YYYY-MM, e.g. 2026-11)",
                       errors={"month": ["expected YYYY-MM, e.g. 2026-11"]})
    return month


def _previous(month: str) -> str:
    year, m = int(month[:4]), int(month[5:])
    return f"{year - 1}-12" if m == 1 else f"{year}-{m - 1:02d}"


def _deduction(item: dict, value, facts: st.Facts) -> dict:
    if item["kind"] == "rate":
        points = 0.0 if value is None else item["points"] * (1 - value)
    else:
        points = min(item["points"] * value, item.get("cap", float("inf")))
    return {"figure": item["figure"], "label": item["label"], "value": value, "points": round(points, 2),
            "cases": st.behind(item["figure"], facts) if points else []}


def _score(rt, session, month: str, rules: dict, facts: st.Facts | None = None) -> list[dict]:
    facts = facts or st.load_facts(rt, session, st.month_period(rt, month))
    kinds = {kind: group for group, kinds in rules["peers"].items() for kind in kinds}
    own_facts = st.by_own_unit(facts)
    out = []
    for unit in sorted(rt.tables.units.values(), key=lambda u: u.code):
        if unit.kind not in kinds:
            continue
        own = own_facts[unit.code]
        values = st.figures(own)
        deductions = [_deduction(item, values[item["figure"]], own) for item in rules["deductions"]]
        score = round(rules["base"] - sum(d["points"] for d in deductions), 2)
        out.append({"unit": unit.code, "name": unit.name, "kind": unit.kind, "peer_group": kinds[unit.kind],
                    "score": score, "deductions": deductions,
                    "figures": {k: values[k] for k in ("accepted", "completed", "completion_rate",
                                                       "satisfaction_rate", "on_time_sign_for_rate",
                                                       "on_time_handling_rate", "red_lights", "supervised",
                                                       "refusals", "transfers", "co_handled")}})
    for group in set(kinds.values()):
        peers = sorted((u for u in out if u["peer_group"] == group), key=lambda u: -u["score"])
        for u in peers:
            u["rank"] = 1 + sum(1 for p in peers if p["score"] > u["score"])
            u["peers"] = len(peers)
    return out


def _compute(rt, session, month: str) -> dict:
    with st.without_cycle_collection():
        return _scored_month(rt, session, month)


def _scored_month(rt, session, month: str) -> dict:
    row = _rules_for(session, month)
    rules = parse_rules(row.source, f"{RULES_FILE} v{row.version}")
    facts = st.load_facts(rt, session, st.month_period(rt, month))
    units = _score(rt, session, month, rules, facts)
    previous = _frozen(session, _previous(month))
    if previous is not None:
        before = {u["unit"]: u["score"] for u in previous["units"]}
    else:
        try:
            prev_row = _rules_for(session, _previous(month))
            before = {u["unit"]: u["score"] for u in _score(
                rt, session, _previous(month), parse_rules(prev_row.source))}
        except Conflict:
            before = {}
    for u in units:
        u["previous_score"] = before.get(u["unit"])
        u["change"] = None if u["previous_score"] is None else round(u["score"] - u["previous_score"], 2)
    totals = st.figures(facts)
    return {"month": month, "rules_version": row.version, "base": rules["base"], "statistics": totals,
            "units": sorted(units, key=lambda u: (u["peer_group"], u["rank"], u["unit"]))}


def _frozen(session, month: str) -> dict | None:
    row = session.get(MonthlyReport, month)
    return None if row is None else row.payload


def monthly_assessment(rt, month: str) -> dict:
    """The month's assessment: frozen if the month is closed, else computed now (provisional)."""
    month = _check_month(month)
    with rt.db.read() as session:
        row = session.get(MonthlyReport, month)
        if row is not None:
            return {**row.payload, "closed": True, "closed_at": row.closed_at.isoformat(),
                    "closed_by": row.closed_by, "sha256": row.sha256}
        return {**_compute(rt, session, month), "closed": False}


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def close_month(rt, month: str, actor: str) -> dict:
    """Freeze a finished month's figures and assessment (once; 409 if already closed or not over)."""
    month = _check_month(month)
    end = st.month_period(rt, month).end
    now = clock.now()
    if now < end:
        raise Conflict(f"{month} is not over yet (it ends {end.isoformat()})", errors={"month": ["not over yet"]})
    with rt.db.write() as session:
        if session.get(MonthlyReport, month) is not None:
            raise Conflict(f"{month} is already closed", errors={"month": ["already closed"]})
        payload = json.loads(json.dumps(_compute(rt, session, month), ensure_ascii=False))
        row = MonthlyReport(month=month, rules_version=payload["rules_version"], payload=payload,
                            sha256=_digest(payload), closed_at=now, closed_by=actor)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise Conflict(f"{month} is already closed", errors={"month": ["already closed"]})
    return monthly_assessment(rt, month)


def verify_month(rt, month: str) -> dict:
    """A closed month: does the stored payload still match its hash, and a recomputation now?"""
    month = _check_month(month)
    with rt.db.read() as session:
        row = session.get(MonthlyReport, month)
        if row is None:
            raise Conflict(f"{month} is not closed", errors={"month": ["not closed"]})
        recomputed = json.loads(json.dumps(_compute(rt, session, month), ensure_ascii=False))
        return {"month": month, "hash_ok": _digest(row.payload) == row.sha256,
                "reproducible": recomputed == row.payload, "closed_at": row.closed_at.isoformat()}


def month_of(instant: datetime, tz) -> str:
    local = instant.astimezone(tz)
    return f"{local.year}-{local.month:02d}"
