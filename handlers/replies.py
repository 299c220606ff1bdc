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
    ctx.notify("unit", case.community_code, f"【矛盾联调】案件{case.case_no}已办理完毕，请向当事人回告并组织评价。")
    ctx.notify("citizen", case.reporter_phone, f"【矛盾联调】您反映的事项（{case.case_no}）已办理：{text[:300]}")
    return {"unit": unit, "replied_at": ctx.now.isoformat(), "notified": 2}
