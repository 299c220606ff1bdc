"""The use-case services: one module per resource, one unit of work per function.

Each public function is one use case (`start_case`, `complete_task`, `close_supervision`,
...): it locks the case, loads, acts through the workflow core, saves, appends events and
commits, or rolls everything back. Entrypoints (`api/`, the CLI, `timers/`) call these and
nothing below them.
"""
