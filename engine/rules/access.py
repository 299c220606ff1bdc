"""Who may see and do what: data scope, task candidates, delegation, personal data.

The rules, in one place (the lane → role map itself is `processes/lanes.toml`):

- Scope. A unit sees the cases accepted by the communities at or below it in
  the organisation tree (a community its own, a street office its
  communities', a district its district's), the cases routed to it, the
  cases it holds now and those it had a task on (a coordination office on
  the escalation ladder). The supervision centre and auditors see all.
  Outside scope a case does not exist for the caller (404, never 403).
- Candidates. A task row names a role and a unit (the lane decides the role,
  the case the unit). Its candidates are the users holding that role in that
  unit, or a role that `acts_for` it there (the unit's work centre for its
  handlers).
- Delegation. A role with `may_delegate` (dispatcher, leader) may hand a task
  of its own unit to another candidate of that unit.
- Intake. A community's acceptors and grid workers register cases for their
  own community; an acceptor of any other unit (a hotline desk, a
  department) for the community the first-contact rule places the case in.
- Personal data. The reporter's phone and ID number are shown only to the
  accepting community and to the unit handling the case (its routed unit);
  everyone else gets them masked.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, or_, select

from engine.errors import Forbidden
from engine.rules.organisation import task_roles
from engine.store.models import Case, CaseTask, CaseUnit

ROLES = {
    "acceptor": "受理员",
    "grid_worker": "网格员",
    "handler": "承办人",
    "dispatcher": "工作中心",
    "leader": "责任领导",
    "supervisor": "监管员",
    "auditor": "审计员",
    "designer": "流程设计员",
    "admin": "系统管理员",
}
INTAKE_ROLES = frozenset({"acceptor", "grid_worker"})
SEE_ALL_ROLES = frozenset({"auditor"})
SEE_ALL_KINDS = frozenset({"supervision_centre"})
READ_ONLY_ROLES = frozenset({"auditor"})


@dataclass(frozen=True)
class Caller:
    """The authenticated user, as the services need them: name, unit and roles."""

    username: str
    display_name: str
    unit_code: str
    unit_kind: str
    roles: frozenset[str]


# -- scope ----------------------------------------------------------------------------


def sees_all(caller: Caller) -> bool:
    return caller.unit_kind in SEE_ALL_KINDS or bool(caller.roles & SEE_ALL_ROLES)


def _accepting_units(tables, caller: Caller) -> set[str]:
    return {caller.unit_code} | tables.descendants(caller.unit_code)


def scope_clause(tables, caller: Caller):
    """A WHERE clause on `Case` for the cases the caller may see (None: all of them).

    Read off `case_unit` (every unit that took part in a case, indexed by unit):
    the cases the caller's unit took part in (accepted, routed to, held, or
    given a task), and those accepted by a community below it.
    """
    if sees_all(caller):
        return None
    below = sorted(tables.descendants(caller.unit_code))
    took_part = CaseUnit.unit_code == caller.unit_code
    if below:
        took_part = or_(took_part, CaseUnit.unit_code.in_(below) & CaseUnit.community.is_(True))
    return Case.id.in_(select(CaseUnit.case_id).where(took_part))


def scope_unit(tables, caller: Caller) -> str | None:
    """The one unit whose `case_unit` rows are the caller's whole scope (no community below it), else None."""
    if sees_all(caller) or tables.descendants(caller.unit_code):
        return None
    return caller.unit_code


def can_see(session, tables, caller: Caller, case: Case) -> bool:
    """The same rule as `scope_clause`, for one loaded case."""
    if (sees_all(caller) or caller.unit_code in (case.routed_unit, case.current_unit)
            or case.community_code in _accepting_units(tables, caller)):
        return True
    return bool(session.scalar(select(exists().where(CaseTask.case_id == case.id,
                                                     CaseTask.unit_code == caller.unit_code))))


def sees_personal_data(caller: Caller, case: Case) -> bool:
    return caller.unit_code in (case.community_code, case.routed_unit)


# -- tasks ------------------------------------------------------------------------------


def acting_roles(tables, caller: Caller) -> set[str]:
    """The task roles the caller may work on in their unit: their roles and those they act for."""
    return task_roles(tables.roles, caller.roles)


def is_candidate(tables, caller: Caller, row: CaseTask) -> bool:
    return (row.unit_code is not None and row.unit_code == caller.unit_code
            and row.role in acting_roles(tables, caller))


def may_delegate(tables, caller: Caller, row: CaseTask) -> bool:
    return (row.unit_code is not None and row.unit_code == caller.unit_code
            and any(tables.roles.get(r) is not None and tables.roles[r].may_delegate for r in caller.roles))


def may_release(tables, caller: Caller, row: CaseTask) -> bool:
    """The holder may release a task; so may a delegator of its unit, whoever holds it."""
    return row.assignee is not None and (row.assignee == caller.username or may_delegate(tables, caller, row))


def task_actions(tables, caller: Caller, row: CaseTask) -> list[str]:
    """What the caller may do with a ready task now (for the task page)."""
    actions = []
    if is_candidate(tables, caller, row) and row.assignee in (None, caller.username):
        actions += ["claim", "complete"]
    if may_release(tables, caller, row):
        actions.append("unclaim")
    if may_delegate(tables, caller, row):
        actions.append("delegate")
    return actions


def candidate_clause(tables, caller: Caller):
    """A WHERE clause on `CaseTask` for the tasks the caller is a candidate for."""
    return (CaseTask.unit_code == caller.unit_code) & CaseTask.role.in_(sorted(acting_roles(tables, caller)))


def require_candidate(tables, caller: Caller, row: CaseTask) -> None:
    if not is_candidate(tables, caller, row):
        raise Forbidden(f"task {row.id} is for the {row.role} of {row.unit_code}; "
                        f"{caller.username} is not one of its candidates")


def require_intake(tables, caller: Caller, community: str | None) -> str | None:
    """The community a case registered by the caller belongs to, or Forbidden.

    A community's acceptor or grid worker registers cases for their own
    community. An `acceptor` of any other unit (a hotline desk, a department
    that received the case first) may name the community, or leave it to the
    first-contact rule (None: placed by the case's location, `rules.grids`).
    """
    if caller.unit_kind == "community" and caller.roles & INTAKE_ROLES:
        if community not in (None, caller.unit_code):
            raise Forbidden(f"{caller.username} registers cases for {caller.unit_code} only, not {community}")
        return caller.unit_code
    if "acceptor" in caller.roles:
        return community
    raise Forbidden("only an acceptor (of a community, a hotline desk or a department) or a community's "
                    "grid worker may register a case")


def require_writer(caller: Caller) -> None:
    if caller.roles <= READ_ONLY_ROLES:  # no roles at all is read-only too
        raise Forbidden(f"{caller.username} has read-only access")


DESIGNER_ROLES = frozenset({"designer"})


def require_designer(caller: Caller) -> None:
    """Validating and deploying process definitions is the process designer's."""
    if not caller.roles & DESIGNER_ROLES:
        raise Forbidden(f"{caller.username} is not a process designer")


ADMIN_ROLES = frozenset({"admin"})


def require_admin(caller: Caller) -> None:
    """Administrators' work: units, users and their tokens; client systems and their API keys; the outbox."""
    if not caller.roles & ADMIN_ROLES:
        raise Forbidden(f"{caller.username} is not an administrator")
