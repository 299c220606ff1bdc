"""What changed between two versions of a BPMN diagram, element by element.

Elements are matched by id. Each is described by its type, its name, its
attributes and what it carries: conditions, scripts, timer expressions,
extension properties, the service operation and its parameters, and for a
lane its members. Layout (the bpmndi part) is left out: moving a shape is not
a change of the procedure.
"""
from __future__ import annotations

from lxml import etree

from engine.core.definitions import NS, safe_xml_parser

CONTENT = {
    "condition": "./bpmn:conditionExpression",
    "script": "./bpmn:script",
    "timeDate": "./bpmn:timerEventDefinition/bpmn:timeDate",
    "timeDuration": "./bpmn:timerEventDefinition/bpmn:timeDuration",
    "timeCycle": "./bpmn:timerEventDefinition/bpmn:timeCycle",
    "preScript": "./bpmn:extensionElements/spiffworkflow:preScript",
    "postScript": "./bpmn:extensionElements/spiffworkflow:postScript",
    "documentation": "./bpmn:documentation",
}


def describe(node) -> dict:
    """The comparable description of one element with an id."""
    out: dict = {"type": etree.QName(node).localname, "name": node.get("name")}
    for key, value in sorted(node.attrib.items()):
        local = etree.QName(key).localname
        if local not in ("id", "name"):
            out[f"@{local}"] = value
    for key, path in CONTENT.items():
        texts = [(n.text or "").strip() for n in node.xpath(path, namespaces=NS)]
        if texts:
            out[key] = "\n".join(texts)
    for prop in node.xpath("./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", namespaces=NS):
        out[f"property.{prop.get('name')}"] = prop.get("value")
    for op in node.xpath("./bpmn:extensionElements/spiffworkflow:serviceTaskOperator", namespaces=NS):
        out["operation"] = op.get("id")
        out["resultVariable"] = op.get("resultVariable")
        for param in op.xpath(".//spiffworkflow:parameter", namespaces=NS):
            out[f"parameter.{param.get('id')}"] = param.get("value")
    members = [(n.text or "").strip() for n in node.xpath("./bpmn:flowNodeRef", namespaces=NS)]
    if members:
        out["members"] = sorted(members)
    return out


def elements(xml: str) -> dict[str, dict]:
    root = etree.fromstring(xml.encode("utf-8"), parser=safe_xml_parser())
    return {n.get("id"): describe(n) for n in root.iter()
            if isinstance(n.tag, str) and n.get("id") and etree.QName(n).namespace == NS["bpmn"]}


def _summary(eid: str, d: dict) -> dict:
    return {"element": eid, "type": d["type"], "name": d.get("name")}


def diff(old_xml: str, new_xml: str) -> dict:
    """{"added": [...], "removed": [...], "changed": [...]} between two stored sources."""
    old, new = elements(old_xml), elements(new_xml)
    changed = []
    for eid in sorted(old.keys() & new.keys()):
        a, b = old[eid], new[eid]
        changes = [{"field": k, "from": a.get(k), "to": b.get(k)}
                   for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
        if changes:
            changed.append({**_summary(eid, b), "changes": changes})
    return {"added": [_summary(e, new[e]) for e in sorted(new.keys() - old.keys())],
            "removed": [_summary(e, old[e]) for e in sorted(old.keys() - new.keys())],
            "changed": changed}
