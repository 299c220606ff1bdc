"""The demo instance's other procedures: the screening schedules and a stability risk assessment.

`seed_demo_procedures` is idempotent: it starts each level's screening
schedule (engine.services.screening) unless it runs already, and a demo
assessment of a demolition project (the housing bureau as owner, a
third-party consultancy as assessor) unless one with its title exists.
"""
from __future__ import annotations

from sqlalchemy import select

from engine.services import screening, stability
from engine.store.models import Case

DEMO_ASSESSMENT = {
    "title": "云集路棚户区改造项目（示例稳评）", "description": "棚户区改造，涉及征收安置 320 户。",
    "project_kind": "demolition", "community": "XL-XLJD-YJP", "owner_unit": "YC-ZJJ",
    "assessor": {"name": "宜昌某工程咨询有限公司（第三方稳评机构）"},
}


def seed_demo_procedures(rt, actor: str = "demo") -> dict:
    started = [level for level in rt.tables.screening.levels
               if screening.start_schedule(rt, level, actor)["started"]]
    with rt.db.read() as session:
        exists = session.scalar(select(Case.id).where(Case.title == DEMO_ASSESSMENT["title"]))
    assessment = None
    if exists is None and DEMO_ASSESSMENT["owner_unit"] in rt.tables.units:
        assessment = stability.start_assessment(rt, DEMO_ASSESSMENT, actor)["case_no"]
    return {"schedules_started": started, "assessment": assessment}
