"""Messages between the units working on a case (沟通协作).

Anyone who can see a case may read its messages; anyone but a read-only role
(the auditor) may write one. A message is not a workflow change: it neither
locks the case nor bumps its version, and the table's ids keep the order.
"""
from __future__ import annotations

from sqlalchemy import select

from engine import clock
from engine.errors import InvalidInput
from engine.rules import access
from engine.services.cases import find_case
from engine.store.org_models import CaseComment

MAX_BODY = 2000


def comment_view(row: CaseComment, case_no: str) -> dict:
    return {"id": row.id, "case_no": case_no, "author": row.author, "unit": row.unit_code, "body": row.body,
            "created_at": row.created_at.isoformat()}


def add_comment(rt, case_no: str, body: str, user) -> dict:
    """Post a message on a case the caller can see."""
    body = body.strip() if isinstance(body, str) else ""
    if not body or len(body) > MAX_BODY or "\x00" in body:
        raise InvalidInput("the message is empty, too long or not text",
                           errors={"body": [f"must be 1 to {MAX_BODY} characters of text"]})
    with rt.db.write() as session:
        case = find_case(rt, session, case_no, user)
        access.require_writer(user)
        row = CaseComment(case_id=case.id, author=user.username, unit_code=user.unit_code, body=body,
                          created_at=clock.now())
        session.add(row)
        session.flush()
        return comment_view(row, case.case_no)


def list_comments(rt, case_no: str, user) -> list[dict]:
    """The messages on a case, oldest first."""
    with rt.db.read() as session:
        case = find_case(rt, session, case_no, user)
        rows = session.scalars(select(CaseComment).where(CaseComment.case_id == case.id).order_by(CaseComment.id))
        return [comment_view(r, case.case_no) for r in rows]
