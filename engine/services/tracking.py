"""Public tracking for the citizen: a tracking code issued at intake, and the view it opens.

The code is the citizen's only credential: random, shown once in the
intake's answer and sent to the reporter in the case's own transaction,
stored only as a hash (engine.store.tracking_models). An unknown code and a
malformed one get the same answer; the endpoint is rate-limited per client
address (api.limits), so codes cannot be enumerated. The view carries no
personal data.
"""
from __future__ import annotations

from sqlalchemy import select

from engine.errors import CaseNotFound
from engine.rules.tracking_code import canonical, code_hash, new_code
from engine.services.views import track_view
from engine.store.models import Case
from engine.store.tracking_models import TrackingCode

NOTICE = "【矛盾联调】您反映的事项已受理，案件编号{case_no}，查询码{code}。凭查询码可随时查询办理进度，请妥善保管。"


def issue_tracking_code(op) -> str:
    """A new code for the operation's (new) case: its hash stored, the code sent to the reporter."""
    case = op.case
    code = new_code()
    op.session.add(TrackingCode(code_hash=code_hash(code), case_id=case.id, created_at=op.now))
    op.ctx.notify("citizen", case.reporter_phone, NOTICE.format(case_no=case.case_no, code=code),
                  kind="tracking_code", params={"case_no": case.case_no, "tracking_code": code})
    return code


def track_case(rt, tracking_code: str) -> dict:
    code = canonical(tracking_code)
    with rt.db.read() as session:
        case = None
        if code is not None:
            case = session.scalar(select(Case).join(TrackingCode, TrackingCode.case_id == Case.id)
                                  .where(TrackingCode.code_hash == code_hash(code)))
        if case is None:
            raise CaseNotFound("no case has this tracking code")
        return track_view(rt.tables, case)
