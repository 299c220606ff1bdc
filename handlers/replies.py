"""`unified_reply` (统一回告): one reply from the handling unit, sent back through the community.

Records the reply on the case and queues notifications to the accepting
community and to the citizen in the outbox, in the case's own transaction.
"""
from __future__ import annotations


class ReplyError(ValueError):
    pass


def unified_reply(ctx, params: dict, data: dict) -> dict:
    text = params.get("text") or data.get("reply_text")
    unit = params.get("unit") or data.get("reply_unit") or ctx.case.current_unit
    if not text:
        raise ReplyError("there is no reply text (reply_text) to send")
    case = ctx.case
    case.reply_text = text
    case.reply_unit = unit
    case.replied_at = ctx.now
    ctx.notify("unit", case.community_code, kind="reply_ready", params={"case_no": case.case_no})
    ctx.notify("citizen", case.reporter_phone, kind="citizen_reply", params={"case_no": case.case_no, "reply": text[:300]})
    return {"unit": unit, "replied_at": ctx.now.isoformat(), "notified": 2}
