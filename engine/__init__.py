"""The case engine: SpiffWorkflow wrapped, and the use cases built on it. Knows nothing of Flask.

Four rooms, and one import direction between them (a test holds it):

    services  ->  core  ->  rules  ->  store

- `engine.store`: tables, sessions and the append-only, hash-chained ledger (plain SQLAlchemy).
- `engine.rules`: one place for each rule: working-day calendar, deadlines and lights, access
  and scope, the process data tables, form fields, the intake form, the lifecycles.
- `engine.core`: the workflow core, the only room that imports SpiffWorkflow: definitions,
  the sandbox, one operation on one case, serialization, compaction, timers, replay, lint.
- `engine.services`: the use cases, one module per resource, one unit of work per function.

Beside the rooms, shared by all of them: `errors` (the one error root), `clock` (the one
injectable clock) and `runtime` (the composition root that wires a configured engine).
"""
