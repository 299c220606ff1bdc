"""The workflow serializer, configured in one place.

Cases are stored without their process spec: the spec is stored once per
definition version (`spec_to_json`) and re-attached on load from an in-process
cache, so loading and saving a case costs the same whatever the size of the
definition. The stored case state is compact JSON compressed with zlib.
Every stored state records `SERIALIZER_VERSION`.
"""
from __future__ import annotations

import json
import zlib
from datetime import date
from decimal import Decimal

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer, DefaultRegistry
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

SERIALIZER_VERSION = "spiff-3.2/zlib-json/1"


class SpecFreeWorkflowConverter(BpmnWorkflowConverter):
    """Leaves the spec out of the stored workflow; takes it back as an argument on restore."""

    def to_dict(self, workflow):
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        if spec is None:
            return super().from_dict(dct)
        from uuid import UUID

        workflow = self.target_class(spec, subprocess_specs or {}, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _registry() -> DefaultRegistry:
    registry = DefaultRegistry()
    # datetime is a subclass of date: the registry dispatches on the exact class, so both are needed.
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]), "date")
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]), "Decimal")
    return registry


def _build() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = SpecFreeWorkflowConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config, _registry()))


_serializer = _build()


def _dumps(dct) -> str:
    return json.dumps(dct, cls=_serializer._encoder_cls, ensure_ascii=False, separators=(",", ":"))


def spec_to_json(spec, subprocess_specs: dict) -> str:
    """The parsed process spec (and the specs of its call activities) as JSON, stored once per version."""
    registry = _serializer.registry
    registry._encoder_mode = True
    try:
        dct = {
            "spec": registry.convert(spec),
            "subprocess_specs": {name: registry.convert(s) for name, s in subprocess_specs.items()},
        }
        return _dumps(dct)
    finally:
        registry._encoder_mode = False


def spec_from_json(text: str):
    """(spec, subprocess_specs) restored from `spec_to_json` output."""
    dct = json.loads(text)
    registry = _serializer.registry
    spec = registry.restore(dct["spec"])
    subs = {name: registry.restore(s) for name, s in dct["subprocess_specs"].items()}
    return spec, subs


def dump_workflow(workflow: BpmnWorkflow) -> bytes:
    """The workflow's state without its spec: compressed JSON."""
    registry = _serializer.registry
    registry._encoder_mode = True
    try:
        dct = registry.convert(workflow)
    finally:
        registry._encoder_mode = False
    dct[_serializer.VERSION_KEY] = _serializer.VERSION
    return zlib.compress(_dumps(dct).encode("utf-8"), 1)


def load_workflow(blob: bytes, spec, subprocess_specs: dict) -> BpmnWorkflow:
    """Restore a workflow stored by `dump_workflow`, attaching the (cached) spec objects."""
    dct = json.loads(zlib.decompress(blob).decode("utf-8"), cls=_serializer.json_decoder_cls)
    _serializer.migrate(dct)
    return _serializer.registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)


def state_json(blob: bytes) -> str:
    """The stored state as readable JSON (auditors, debugging)."""
    return zlib.decompress(blob).decode("utf-8")
