"""The one root of domain errors.

Every error a user of the engine can cause or meet derives from `CaseError`;
the API maps each class to one HTTP status in a single handler, and the CLI
prints its message. SpiffWorkflow's own exceptions are wrapped at the engine
boundary so the BPMN element id and the library's notes survive.
"""
from __future__ import annotations


class CaseError(Exception):
    """Base of all domain errors: a stable `code`, a message, optional field errors."""

    code = "case_error"
    status = 400

    def __init__(self, message: str, *, errors: dict | None = None, element: str | None = None, **details):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.element = element
        self.details = details

    def to_dict(self) -> dict:
        body = {"code": self.code, "message": self.message, "errors": self.errors}
        if self.element:
            body["element"] = self.element
        body.update({k: v for k, v in self.details.items() if v is not None})
        return body


class NotFound(CaseError):
    code = "not_found"
    status = 404


class CaseNotFound(NotFound):
    code = "case_not_found"


class TaskNotFound(NotFound):
    code = "task_not_found"


class DefinitionNotFound(NotFound):
    code = "definition_not_found"


class Conflict(CaseError):
    code = "conflict"
    status = 409


class TaskNotReady(Conflict):
    code = "task_not_ready"


class TaskClaimed(Conflict):
    code = "task_claimed"


class StaleVersion(Conflict):
    code = "stale_version"


class CaseMoved(StaleVersion):
    """An optimistic step's case changed between its reads and its first write (engine.store.db). The
    service runs again holding the lock (`retried_when_moved`); should one escape, it is a stale version."""


class InvalidInput(CaseError):
    code = "invalid_input"
    status = 422


class InvalidForm(InvalidInput):
    code = "invalid_form"


class Unauthorized(CaseError):
    """No valid API token: the caller is nobody."""

    code = "unauthorized"
    status = 401


class Forbidden(CaseError):
    """The caller is known, but their role or unit does not allow the action."""

    code = "forbidden"
    status = 403


class UnknownUser(NotFound):
    code = "user_not_found"


class DefinitionInvalid(CaseError):
    """A BPMN/DMN file was refused. `problems` lists dicts: file, element, line, reason."""

    code = "definition_invalid"
    status = 422

    def __init__(self, message: str, problems: list[dict]):
        super().__init__(message, problems=problems)
        self.problems = problems


class HandlerFailed(CaseError):
    """A service-task handler raised; the case was rolled back unchanged."""

    code = "handler_failed"
    status = 502


class DefinitionError(CaseError):
    """The procedure is at fault, not the user: a script or expression of the BPMN failed while running
    (refused by the sandbox, too large, a bad timer value, an error of its own). The case was rolled back
    unchanged; `element` names the BPMN element, the message says why."""

    code = "definition_error"
    status = 500


class EngineError(CaseError):
    """SpiffWorkflow raised while running a case (a broken expression, an engine bug)."""

    code = "engine_error"
    status = 500


class UnitNotFound(NotFound):
    code = "unit_not_found"


class AlreadyExists(Conflict):
    """A unit code or username that is taken."""

    code = "already_exists"


class UnitInUse(Conflict):
    """A unit cannot be deactivated while it has open tasks, active users or active units under it."""

    code = "unit_in_use"


class OrganisationGaps(Conflict):
    """The organisation would leave some task with no unit or no candidate; `errors["gaps"]` names each."""

    code = "organisation_gaps"

    def __init__(self, message: str, gaps: list[str]):
        super().__init__(message, errors={"gaps": gaps})
        self.gaps = gaps


class OrganisationGap(CaseError):
    """A user task would have no unit (the organisation lacks a unit its lane needs); nothing was changed.

    The procedure and the organisation are at fault, not the caller: an
    administrator completes the organisation, then retries (see incidents).
    """

    code = "organisation_gap"
    status = 500


class DatabaseUnavailable(CaseError):
    """The database cannot be reached, dropped the connection, or stayed busy past its timeout.

    Nothing of the attempt was kept (or, for a connection dropped at commit, the
    outcome is unknown: retry with the same Idempotency-Key). `retry_after` is
    the number of seconds a client should wait before trying again.
    """

    code = "database_unavailable"
    status = 503

    def __init__(self, message: str = "the database is unavailable; try again shortly", *, retry_after: int = 2,
                 reason: str | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason


class IdempotencyKeyReused(InvalidInput):
    """An Idempotency-Key sent again with a different request (method, path or body)."""

    code = "idempotency_key_reused"


class IdempotencyInProgress(Conflict):
    """The first request with this Idempotency-Key is still running: retry after it finishes."""

    code = "idempotency_in_progress"
    retry_after = 1
