"""The console's words in Chinese (default) and English, and the language of a request.

Flask-Babel picks the language (`?lang=` remembered in the session, else
Chinese); `t(key)` looks a key up here. Labels of form fields come from the
BPMN itself (engine.rules.forms `label.<field>`), not from this table.
"""
from __future__ import annotations

from flask import request, session

LANGUAGES = ("zh", "en")
DEFAULT = "zh"

MESSAGES = {
    "first_handling_unit": ('首办单位', 'First-handling unit'),
    "transfers": ('转办次数', 'Transfers'),
    "co_units": ('协办单位', 'Co-handling units'),
    "project_approval": ('项目审批（稳评把关）', 'Project approval (assessment gate)'),
    "approve_project": ('批准项目', 'Approve the project'),
    # the other procedures: the people's-conditions log, screening rounds, mediation hand-offs
    "people_log": ('民情日志', "People's-conditions log"),
    "worker": ('网格员', 'Grid worker'),
    "household": ('走访户', 'Household'),
    "topic": ('主题', 'Topic'),
    "notes": ('情况', 'Notes'),
    "follow_up": ('跟进', 'Follow-up'),
    "visited_on": ('走访日期', 'Visited on'),
    "new_log_entry": ('记录走访', 'Record a visit'),
    "record": ('记录', 'Record'),
    "per_grid": ('按网格统计', 'Per grid'),
    "entries": ('条目', 'Entries'),
    "to_case": ('转为案件', 'Make a case'),
    "screening": ('矛盾排查', 'Screening'),
    "level": ('层级', 'Level'),
    "period": ('周期', 'Period'),
    "units": ('单位', 'Units'),
    "findings": ('排查结果', 'Findings'),
    "mediation_handoff": ('移交调解', 'Hand to mediation'),
    "mediation_body": ('调解组织', 'Mediation body'),
    "hand_off": ('移交', 'Hand off'),
    "street": ('街道', 'Street'),
    "city": ('市级', 'City'),
    "people_mediation": ('人民调解委员会', "people's mediation committee"),
    "police_mediation": ('驻所调解室', 'police-station mediation room'),
    "court_mediation": ('诉调对接室', 'court mediation'),
    "procuratorate_mediation": ('检调对接室', 'procuratorate mediation'),
    "medical_mediation": ('医调委', 'medical dispute mediation committee'),
    "traffic_mediation": ('交通事故联动调解中心', 'traffic-accident mediation centre'),
    "labour_mediation": ('劳动争议调解委员会', 'labour dispute mediation committee'),
    "nothing_new": ('无新情况', 'nothing new'),
    "risk_update": ('风险更新', 'risk update'),
    "new_case": ('新案件', 'new case'),
    "transferring": ('转办中', 'transferring'),
    # handling as the seeds run it: refusal, co-handling (the task page's shown data)
    "comma_separated": ('多个用逗号分隔', 'separate several with commas'),
    "co_results": ('协办单位意见', "Co-handlers' results"),
    "last_refusal": ('退回情况', 'The refusal'),
    "person": ('责任人', 'Person'),
    "opinion": ('意见', 'Opinion'),
    "reason": ('理由', 'Reason'),
    "suggested_unit": ('建议承办单位', 'Suggested unit'),
    "refused": ('已退回', 'refused'),
    "attending": ('参加接访', 'attending'),
    "app_name": ("联动化解工作平台", "Dispute Linkage Console"),
    "sign_in": ("登录", "Sign in"), "sign_out": ("退出", "Sign out"),
    "username": ("用户名", "Username"), "password": ("密码", "Password"),
    "bad_credentials": ("用户名或密码错误", "Wrong username or password"),
    "too_many": ("登录失败次数过多，请稍后再试", "Too many failed sign-ins; try again later"),
    "my_tasks": ("我的待办", "My tasks"), "candidate_tasks": ("可领取任务", "Candidate tasks"),
    "tasks": ("待办任务", "Tasks"), "intake": ("受理登记", "Register a case"),
    "supervision": ("督办", "Supervision"), "statistics": ("统计考核", "Statistics"),
    "designer": ("流程设计", "Designer"), "audit": ("审计回放", "Audit"),
    "incidents": ("故障事件", "Incidents"), "track": ("办理进度查询", "Track a case"),
    "case": ("案件", "Case"), "cases": ("案件查询", "Cases"), "case_no": ("案件编号", "Case number"), "title": ("标题", "Title"),
    "description": ("事由", "Description"), "category": ("类别", "Category"), "channel": ("渠道", "Channel"),
    "status": ("状态", "Status"), "step": ("环节", "Step"), "lane": ("泳道", "Lane"), "unit": ("单位", "Unit"),
    "assignee": ("办理人", "Assignee"), "due_at": ("期限", "Due"), "light": ("亮灯", "Light"),
    "created_at": ("创建时间", "Created"), "filter": ("筛选", "Filter"), "all": ("全部", "All"),
    "green": ("绿灯", "green"), "yellow": ("黄灯", "yellow"), "red": ("红灯", "red"),
    "claim": ("领取", "Claim"), "unclaim": ("退回领取", "Release"), "delegate": ("指派", "Delegate"),
    "complete": ("提交", "Complete"), "delegate_to": ("指派给（用户名）", "Delegate to (username)"),
    "form": ("办理表单", "Form"), "no_tasks": ("暂无任务", "No tasks"),
    "reporter": ("当事人", "Reporter"), "reporter_name": ("当事人姓名", "Reporter's name"),
    "reporter_phone": ("联系电话", "Phone"), "reporter_id_no": ("身份证号", "ID number"),
    "address": ("地址", "Address"), "grid": ("网格", "Grid"), "community": ("社区", "Community"),
    "register": ("登记", "Register"), "registered": ("已登记，查询码：", "Registered; tracking code: "),
    "summary": ("概况", "Summary"), "timeline": ("办理过程", "Timeline"), "comments": ("沟通协作", "Comments"),
    "notifications": ("通知", "Notifications"), "diagram": ("流程图", "Diagram"),
    "who": ("办理人", "Who"), "what": ("事项", "What"), "when": ("时间", "When"),
    "post": ("发送", "Post"), "message": ("消息", "Message"), "recipient": ("接收方", "Recipient"),
    "delivery": ("投递", "Delivery"), "open_tasks": ("当前环节", "Current steps"),
    "current_unit": ("当前单位", "Current unit"), "routed_unit": ("承办单位", "Handling unit"),
    "rating": ("评价", "Rating"), "reply": ("答复", "Reply"),
    "late": ("超时", "Late"), "late_days": ("超期工作日", "Working days late"),
    "late_hours": ("超期小时", "Hours late"), "note": ("批注", "Note"), "close": ("办结", "Close"),
    "opened_at": ("督办时间", "Opened"), "counts_by_unit": ("各单位红黄灯", "Lights by unit"),
    "from": ("起", "From"), "to": ("止", "To"), "month": ("月份", "Month"), "show": ("查询", "Show"),
    "download_xlsx": ("下载月报 (XLSX)", "Download the monthly report (XLSX)"),
    "assessment": ("月度考核", "Monthly assessment"), "score": ("得分", "Score"),
    "upload": ("上传 BPMN 文件", "Upload BPMN files"), "validate": ("校验", "Validate"), "deploy": ("部署", "Deploy"),
    "versions": ("版本", "Versions"), "diff": ("差异", "Diff"), "processes": ("流程", "Processes"),
    "problems": ("问题", "Problems"), "element": ("元素", "Element"), "no_problems": ("校验通过", "No problems"),
    "deployed": ("已部署", "Deployed"), "replay": ("回放", "Replay"), "verify": ("校验", "Verify"),
    "until": ("回放至事件", "Until event"), "verdict": ("结论", "Verdict"),
    "tracking_code": ("查询码", "Tracking code"), "query": ("查询", "Look up"),
    "not_found": ("未找到", "Not found"), "forbidden": ("无权操作", "Forbidden"), "conflict": ("冲突", "Conflict"),
    "rate_limited": ("请求过多", "Too many requests"), "error": ("错误", "Error"),
    "csrf_refused": ("请求被拒绝", "Request refused"),
    "csrf_refused_detail": ("表单缺少有效的安全令牌（CSRF），请刷新页面后重试。",
                            "The form lacks a valid security (CSRF) token: reload the page and try again."),
    "invalid": ("表单有误，请按提示修改", "The form has errors"),
    "required": ("必填", "required"), "yes": ("是", "yes"), "no": ("否", "no"),
    "kind": ("类型", "Kind"), "count": ("次数", "Count"), "source": ("来源", "Source"),
    "back": ("返回", "Back"), "language": ("English", "中文"), "actions": ("操作", "Actions"),
    "accepted_at": ("受理时间", "Accepted"), "updated_at": ("更新时间", "Updated"),
    "closed_at": ("办结时间", "Closed"), "handling_unit": ("承办单位", "Handling unit"),
    "figure": ("指标", "Figure"), "value": ("数值", "Value"), "done": ("已完成", "Done"),
    # event types of the case log (what the timeline and the replay show)
    "case_started": ("受理登记", "case registered"), "task_ready": ("环节开始", "step opened"),
    "task_completed": ("环节办结", "step completed"), "task_claimed": ("领取", "claimed"),
    "task_unclaimed": ("退回领取", "released"), "task_delegated": ("指派", "delegated"),
    "task_cancelled": ("环节取消", "step cancelled"), "timer_fired": ("计时到期", "timer fired"),
    "service_called": ("系统处理", "service called"), "case_completed": ("办结归档", "case closed"),
    "case_migrated": ("流程迁移", "case migrated"), "case_refused": ("退回", "refused"),
    "case_transferred": ("转办", "transferred"), "first_handling_fixed": ("首办负责", "first handling fixed"),
    "co_units_added": ("增加协办单位", "co-handling units added"),
    # channels of intake
    "walk_in": ("来访", "walk-in"), "hotline_12345": ("12345热线", "12345 hotline"),
    "hotline_12348": ("12348热线", "12348 hotline"), "sms": ("短信", "SMS"), "web": ("网上", "web"),
    "grid_worker": ("网格员", "grid worker"), "police_110": ("110联动", "110 police"),
    # choices of the standard procedure's enum fields (the value itself when a choice is not here)
    "resolved": ("已化解", "resolved"), "unresolved": ("未化解", "unresolved"), "escalate": ("上报", "escalate"),
    "approve": ("同意", "approve"), "return": ("退回重办", "return"), "satisfied": ("满意", "satisfied"),
    "basically_satisfied": ("基本满意", "basically satisfied"), "dissatisfied": ("不满意", "dissatisfied"),
    "not_implemented": ("未落实", "not implemented"), "resolve": ("化解", "resolve"), "assign": ("交办", "assign"),
    # the statistics' figures (what each counts: engine.services.statistics.definitions)
    "accepted": ("受理量", "accepted"), "completed": ("办结量", "completed"),
    "completion_rate": ("办结率", "completion rate"), "resolved_within_month_rate": ("当月化解率", "resolved within the month"),
    "satisfaction_rate": ("满意率", "satisfaction rate"), "reopened": ("重办量", "reopened"),
    "on_time_sign_for_rate": ("按时签收率", "on-time sign-for rate"),
    "on_time_handling_rate": ("按时办理率", "on-time handling rate"), "yellow_lights": ("黄灯数", "yellow lights"),
    "red_lights": ("红灯数", "red lights"), "supervised": ("督办数", "supervised"),
    "supervision_closed": ("督办办结数", "supervision closed"),
    "accept": ("签收", "accept"), "refuse": ("退回", "refuse"), "rank": ("排名", "Rank"),
}


def select_locale() -> str:
    """Flask-Babel's locale selector: `?lang=` (remembered), else the session's, else Chinese."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        session["lang"] = asked
    return session.get("lang") if session.get("lang") in LANGUAGES else DEFAULT


def _english() -> bool:
    from flask import g
    from flask_babel import get_locale

    found = g.get("_console_en")
    if found is None:
        found = g._console_en = str(get_locale()) == "en"
    return found


def t(key: str) -> str:
    words = MESSAGES.get(key)
    if words is None:
        return key
    return words[1] if _english() else words[0]


def label_of(field: dict) -> str:
    """A form field's label in the reader's language, from the BPMN; its name when there is none."""
    from flask_babel import get_locale

    labels = field.get("label") or {}
    lang = str(get_locale())
    return labels.get(lang) or labels.get(DEFAULT) or field["name"]
