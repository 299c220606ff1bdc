"""The code behind BPMN service tasks, registered by operation name.

A service task names its operation in `spiffworkflow:serviceTaskOperator id=...`;
the sandboxed script engine's `call_service` looks the name up here. A BPMN
file naming an operation not in `HANDLERS` is refused when it is loaded.
Adding a handler touches one module and one line of this registry.

A handler is `handler(ctx, params, data) -> dict`: `ctx` is the engine's
`HandlerContext` (the case record, the data tables, the clock, the outbox),
`params` the evaluated operator parameters, `data` the task data, which the
handler may extend. The returned dict (plain JSON data) is stored under the
task's result variable and recorded in the case's event log.
"""
from handlers import assignment, handling, lights, mediation, replies, routing, screening, stability

HANDLERS = {
    "route_case": routing.route_case,
    "unified_reply": replies.unified_reply,
    "assign_case": assignment.assign_case,
    "yellow_light": lights.yellow_light,
    "red_light": lights.red_light,
    "dock_mediation": mediation.dock_mediation,
    "start_mediation_clock": mediation.start_mediation_clock,
    "record_mediation_session": mediation.record_mediation_session,
    "find_confirmation_court": mediation.find_confirmation_court,
    "choose_mediation_body": mediation.choose_mediation_body,
    "sign_for_case": handling.sign_for_case,
    "transfer_case": handling.transfer_case,
    "add_co_units": handling.add_co_units,
    "co_sign_for_case": handling.co_sign_for_case,
    "record_joint_reception": handling.record_joint_reception,
    "open_assessment": stability.open_assessment,
    "review_assessment": stability.review_assessment,
    "open_screening_round": screening.open_screening_round,
    "record_screening_finding": screening.record_screening_finding,
}
