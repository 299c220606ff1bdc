"""Talk to the real app as the demo users, and drive cases over HTTP, each step by its own role."""
from __future__ import annotations

from tests.support import COMMUNITY, intake  # noqa: F401  (re-exported for the API tests)

PHONE, ID_NO = "13812345678", "420502198001011234"
MASKED_PHONE, MASKED_ID_NO = "138****5678", "420***********1234"

# Who does each step of the standard procedure for a case of COMMUNITY routed to YC-CGJ, and with what form.
STEPS = {
    "mediate": ("yjp_acceptor", {"mediation_result": "unresolved"}),
    "sign_for": ("cgj_handler", {"decision": "accept", "responsible_section": "执法一科", "responsible_person": "cgj_handler"}),
    "handle": ("cgj_handler", {"result": "已责令整改，漏水已修复", "measures": "现场查看，约谈双方"}),
    "approve": ("cgj_leader", {"decision": "approve"}),
    "evaluate": ("yjp_acceptor", {"rating": "satisfied"}),
    "review": ("jgzx_supervisor", {"instructions": "督办：三日内现场整改"}),
    "decide": ("jgzx_supervisor", {"ruling": "依法终结"}),
}


def intake_body(**overrides) -> dict:
    """The engine tests' intake form, without the community: over HTTP it is the caller's own."""
    body = {k: v for k, v in intake().items() if k != "community"}
    body.update(overrides)
    return body


class ApiClient:
    """A Flask test client that sends the bearer token of the named demo user."""

    def __init__(self, client, tokens: dict[str, str]):
        self.client = client
        self.tokens = tokens

    def headers(self, user: str | None) -> dict:
        return {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}

    def get(self, path: str, user: str | None = None, **kwargs):
        return self.client.get(path, headers=self.headers(user), **kwargs)

    def post(self, path: str, user: str | None = None, json=None, **kwargs):
        return self.client.post(path, headers=self.headers(user), json=json, **kwargs)

    # -- the procedure ------------------------------------------------------------------

    def register(self, user: str = "yjp_acceptor", **overrides) -> dict:
        resp = self.post("/api/v1/cases", user, intake_body(**overrides))
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def case(self, case_no: str, user: str = "jgzx_supervisor") -> dict:
        resp = self.get(f"/api/v1/cases/{case_no}", user)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def open_task(self, case_no: str) -> dict:
        tasks = self.case(case_no)["open_tasks"]
        assert len(tasks) == 1, tasks
        return tasks[0]

    def step(self, case_no: str, element: str, user: str | None = None, **data) -> dict:
        """Complete the case's open task, which must be `element`, as its user (claiming first)."""
        task = self.open_task(case_no)
        assert task["element"] == element, f"expected {element}, the case is at {task['element']}"
        default_user, default_data = STEPS[element]
        user = user or default_user
        resp = self.post(f"/api/v1/tasks/{task['id']}/claim", user)
        assert resp.status_code == 200, resp.get_json()
        if not data and "responsible_person" in default_data:
            default_data = dict(default_data, responsible_person=user)  # the signing handler names themself
        resp = self.post(f"/api/v1/tasks/{task['id']}/complete", user, {"data": data or default_data})
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def drive(self, case_no: str, *elements: str) -> dict:
        out = {}
        for element in elements:
            out = self.step(case_no, element)
        return out

    def at_signing(self, **overrides) -> tuple[str, dict]:
        """A new case of COMMUNITY, mediated without success and routed: (case_no, its sign_for task)."""
        case_no = self.register(**overrides)["case_no"]
        self.step(case_no, "mediate")
        return case_no, self.open_task(case_no)
