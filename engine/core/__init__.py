"""The workflow core: the only room of the engine that knows SpiffWorkflow.

Parsing, checking and versioning definitions (`definitions`, `lint`, `bpmn_diff`), the
sandboxed script engine (`sandbox`, with `sandbox_limits`, `sandbox_guards`, `sandbox_data`
and, for validation, `sandbox_constants`), one engine operation on one case (`operation`), storing workflow state (`serializer`, `compaction`), the timers a workflow
waits on (`timers`) and deterministic replay of a case's history (`replay`). It uses the
rules and the store; the use-case services use it.
"""
