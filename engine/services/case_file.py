"""The case page's file in one read: summary, event log, comments, notifications and diagram.

The console's case page shows what five API calls answer (the case, its
events, its comments, its notifications, its diagram); asking them one by
one would take five transactions, so this use case reads them in one, with
the same scope (not found outside the caller's scope) and the same masking
as each of those calls (`engine.services.cases`, `.comments`,
`.notifications`, `.diagram`).
"""
from __future__ import annotations

from sqlalchemy import select

from engine.services.cases import find_case, masked_for
from engine.services.comments import comment_view
from engine.services.diagram import diagram_of
from engine.services.notifications import message_view
from engine.services.views import case_view, event_view, open_rows_by_case
from engine.store.models import CaseEvent, Outbox
from engine.store.org_models import CaseComment


def case_file(rt, case_no: str, user=None) -> dict:
    with rt.db.read() as session:
        case = find_case(rt, session, case_no, user)
        masked = masked_for(user, case)
        open_rows = open_rows_by_case(session, [case.id])[case.id]
        events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)).all()
        comments = session.scalars(select(CaseComment).where(CaseComment.case_id == case.id)
                                   .order_by(CaseComment.id))
        messages = session.scalars(select(Outbox).where(Outbox.case_id == case.id).order_by(Outbox.id))
        return {
            "case": case_view(session, case, include_tasks=True, open_rows=open_rows, masked=masked),
            "events": [event_view(e, masked=masked) for e in events],
            "comments": [comment_view(c, case.case_no) for c in comments],
            "messages": [message_view(m, case.case_no, masked) for m in messages],
            "diagram": diagram_of(session, case, events, open_rows),
        }
