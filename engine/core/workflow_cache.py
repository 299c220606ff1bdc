"""Each process's cache of the workflows its own operations last saved, so the next step skips deserializing.

Consecutive steps of a case mostly land on the worker that served the last
one (always, with one worker): that worker still holds the `BpmnWorkflow` it
dumped. An entry is (case id, definition id, the exact bytes dumped, the
workflow object); an operation that finds its case's entry uses the object
only if the case's stored state, read under the case's lock, *is still those
bytes* -- the same check Temporal's sticky workflow cache makes with the
history length. Anything else (another worker or a timer worker moved the
case on, a rolled-back transaction, a repair that rewrote the state) leaves
different bytes, and the state is deserialized as before. Since the object is
what those bytes were dumped from, using it is the same as reading them.

An entry is taken out while an operation works on it (never shared between
two threads); the operation puts it back when it saves (`CaseOperation.finish`
dumps last, after every change to the workflow). At most `size` entries
(WORKFLOW_CACHE_SIZE, default 256; 0 turns the cache off), least recently
saved dropped first. `hits` and `misses` count lookups.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class _Entry:
    definition_id: int
    state: bytes
    workflow: object


class WorkflowCache:
    def __init__(self, size: int | None = None):
        self.size = int(os.environ.get("WORKFLOW_CACHE_SIZE", 256)) if size is None else size
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def take(self, case_id: int | None, definition_id: int, state: bytes | None):
        """The workflow saved as `state` for the case, taken out of the cache; None when not held."""
        if case_id is None or state is None or self.size <= 0:
            return None
        with self._lock:
            entry = self._entries.pop(case_id, None)
            if entry is None or entry.definition_id != definition_id or entry.state != bytes(state):
                self.misses += 1
                return None
            self.hits += 1
            return entry.workflow

    def keep(self, case_id: int | None, definition_id: int, state: bytes, workflow) -> None:
        """Hold `workflow`, just dumped as `state`, for the case's next operation in this process."""
        if case_id is None or self.size <= 0:
            return
        with self._lock:
            self._entries[case_id] = _Entry(definition_id, state, workflow)
            self._entries.move_to_end(case_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
