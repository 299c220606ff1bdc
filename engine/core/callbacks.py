"""Status callbacks to the system a case came from (webhooks), written to the outbox.

When an operation changes a case's status, and the case came from a client
system with a callback URL (`engine.store.client_models`), one outbox row of
channel `webhook` is added in the same transaction: recipient kind
`api_client`, recipient the client's name (the delivery side looks up its
URL and signing secret there), message the JSON body to POST. The body
carries the case number, the system's own reference and the statuses — no
personal data.
"""
from __future__ import annotations

from sqlalchemy import insert, select

from engine.store.client_models import ApiClient, CaseSource
from engine.store.db import json_dumps
from engine.store.models import Case, Outbox

EVENT = "case.status_changed"


def callback_body(case: Case, external_ref: str | None, previous: str, now) -> dict:
    return {"event": EVENT, "case_no": case.case_no, "external_ref": external_ref,
            "previous_status": previous, "status": case.status, "current_unit": case.current_unit,
            "at": now.isoformat()}


SOURCE_COLUMNS = (CaseSource.external_ref, ApiClient.name, ApiClient.callback_url, ApiClient.revoked)


def with_callback_source(stmt, case_id_column):
    """`stmt` with the case's source system outer-joined (SOURCE_COLUMNS added), for `keep_callback_source`."""
    return (stmt.add_columns(*SOURCE_COLUMNS).outerjoin(CaseSource, CaseSource.case_id == case_id_column)
            .outerjoin(ApiClient, ApiClient.id == CaseSource.client_id))


def keep_callback_source(case: Case, row) -> None:
    """Remember the source columns read with the case (a row of `with_callback_source`): no second read."""
    vars(case)["_callback_source"] = row if row is not None and row.name is not None else None


def enqueue_status_callback(session, case: Case, previous: str, now, writer=None) -> bool:
    """Queue the webhook for a status change of `case`, if its source system wants callbacks.

    The outbox row is written by `writer` (an engine operation's batch, engine.store.batch) or the session.
    """
    source = vars(case).get("_callback_source", False)
    if source is False:  # not read with the case
        source = session.execute(select(*SOURCE_COLUMNS).join(ApiClient, ApiClient.id == CaseSource.client_id)
                                 .where(CaseSource.case_id == case.id)).first()
    if source is None or not source.callback_url or source.revoked:
        return False
    body = callback_body(case, source.external_ref, previous, now)
    (writer or session).execute(insert(Outbox.__table__), [dict(
        case_id=case.id, channel="webhook", recipient_kind="api_client", recipient=source.name,
        message=json_dumps(body), kind="status_changed", params=body, status="pending", created_at=now)])
    return True
