"""A small actions helper: drive cases through the standard procedure in tests."""
from __future__ import annotations

from sqlalchemy import select

from engine.services import cases
from engine.store.org_models import AppUser, UserRole

COMMUNITY = "XL-XLJD-YJP"


def intake(**overrides) -> dict:
    data = {
        "title": "楼上漏水纠纷",
        "description": "居民反映楼上住户装修导致漏水，协商未果。",
        "category": "urban_management",
        "channel": "walk_in",
        "reporter": {"name": "张三", "phone": "13812345678", "id_no": "420502198001011234"},
        "location": {"address": "西陵区云集路12号", "grid": "YJP-03"},
        "community": COMMUNITY,
    }
    data.update(overrides)
    return data


class Driver:
    """Completes the open task of one case, step by step, as named."""

    def __init__(self, rt, case: dict):
        self.rt = rt
        self.case = case

    @classmethod
    def start(cls, rt, actor="acceptor", **overrides) -> "Driver":
        return cls(rt, cases.start_case(rt, intake(**overrides), actor))

    @property
    def open(self) -> dict:
        tasks = self.case["open_tasks"]
        assert len(tasks) == 1, tasks
        return tasks[0]

    def do(self, element: str, actor: str = "someone", **data) -> dict:
        task = self.open
        assert task["element"] == element, f"expected {element}, case is at {task['element']}"
        self.case = cases.complete_task(self.rt, task["id"], data, actor)
        return self.case

    def to_signing(self):
        return self.do("mediate", mediation_result="unresolved")

    def handle_and_approve(self):
        self.do("sign_for", decision="accept", responsible_section="执法一科", responsible_person=self.handler())
        return self.handle_again()

    def handler(self) -> str:
        """A handler of the unit the case is at (the responsible person must be one), or a name when it has none."""
        with self.rt.db.read() as s:
            found = s.scalar(select(AppUser.username).join(UserRole, UserRole.user_id == AppUser.id).where(
                AppUser.unit_code == self.open["unit"], UserRole.role == "handler").order_by(AppUser.username))
        return found or "李四"

    def handle_again(self):
        self.do("handle", result="已责令整改，漏水已修复", measures="现场查看，约谈双方")
        return self.do("approve", decision="approve")

    def happy_path(self):
        self.to_signing()
        self.handle_and_approve()
        return self.do("evaluate", rating="satisfied")
