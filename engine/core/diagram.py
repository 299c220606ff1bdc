"""A process's BPMN diagram as SVG, drawn server-side from its stored diagram information (BPMNDI).

`render_svg` reads the BPMN XML a definition was deployed from (its shapes'
bounds and its edges' waypoints) and draws every element as an SVG group
`<g class="bpmn-element <kind> [passed|current|late]" data-element="<id>">`,
so a page styles the path taken, the current steps and the late ones with
CSS alone. No script, no external asset: the SVG is inline in the page.
`path_taken` is the case's side: the elements and flows its event log shows it
passed through.
"""
from __future__ import annotations

from functools import lru_cache
from xml.sax.saxutils import escape

from lxml import etree

from engine.core.definitions import safe_xml_parser

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
EVENTS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"}
GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
MARGIN = 20


def path_taken(xml: str | bytes, arrivals: list[tuple[int, str]], departures: list[tuple[int, str]],
               process_id: str | None = None) -> tuple[set[str], set[str]]:
    """(elements, sequence flows) of the path, from what the event log says happened and when.

    `arrivals` are (event seq, element) where the case reached an element (a
    step opened, a service called, the end reached); `departures` are where it
    left one (a step completed, a service called, a timer fired). The
    automatic elements between (gateways, script tasks, start events) leave no
    event: for each arrival the path is the shortest chain of automatic
    elements back to the latest departure before it. The workflow state cannot
    say this: its completed part is compacted away (engine.core.compaction).
    """
    nodes, flows = _graph(xml if isinstance(xml, str) else xml.decode(), process_id)
    incoming: dict[str, list[tuple[str, str]]] = {}
    for flow, source, target in flows:
        incoming.setdefault(target, []).append((flow, source))
    left: dict[str, list[int]] = {}
    for seq, element in departures:
        left.setdefault(element, []).append(seq)
    if arrivals:
        for n, kind in nodes.items():
            if kind == "startEvent":
                left.setdefault(n, []).append(0)
    passed = {element for _seq, element in departures if element in nodes}
    taken: set[str] = set()
    for seq, element in arrivals:
        if element not in nodes:
            continue
        passed.add(element)
        best, parents, todo, seen = None, {}, [element], {element}
        while todo:  # breadth first, backwards; stops at elements that leave an event
            nxt = []
            for node in todo:
                for flow, source in incoming.get(node, ()):
                    if source in seen:
                        continue
                    seen.add(source)
                    parents[source] = (flow, node)
                    before = [s for s in left.get(source, ()) if s <= seq]
                    if before and (best is None or max(before) > best[0]):
                        best = (max(before), source)
                    elif not left.get(source) and nodes.get(source) not in RECORDED_KINDS:
                        nxt.append(source)
            todo = nxt
        node = best[1] if best else None
        while node is not None and node != element:
            flow, node = parents[node]
            taken.add(flow)
            passed.add(node)
    return passed, taken


RECORDED_KINDS = {"userTask", "manualTask", "serviceTask", "callActivity", "endEvent", "boundaryEvent",
                  "intermediateCatchEvent"}


@lru_cache(maxsize=64)
def _graph(xml: str, process_id: str | None) -> tuple[dict, tuple]:
    """({node id: kind}, ((flow id, source, target), ...)) of the process: per definition, once."""
    root = etree.fromstring(xml.encode(), safe_xml_parser())
    processes = root.findall("bpmn:process", NS)
    if process_id is not None:
        processes = [p for p in processes if p.get("id") == process_id] or processes
    nodes, flows = {}, []
    for process in processes:
        for node in process.iter():
            if not isinstance(node.tag, str) or not node.get("id"):
                continue
            kind = etree.QName(node).localname
            if kind == "sequenceFlow":
                flows.append((node.get("id"), node.get("sourceRef"), node.get("targetRef")))
            else:
                nodes[node.get("id")] = kind
    return nodes, tuple(flows)


RECORDED_KINDS = {"userTask", "manualTask", "serviceTask", "callActivity", "endEvent", "boundaryEvent",
                  "intermediateCatchEvent"}


def _kind(node) -> str:
    return etree.QName(node).localname if node is not None else "unknown"


def _wrap(text: str, width: int) -> list[str]:
    per_line = max(4, width // 13)
    return [text[i:i + per_line] for i in range(0, len(text), per_line)][:3]


def _text(x: float, y: float, text: str, width: int, cls: str = "label") -> str:
    lines = _wrap(text, width)
    top = y - (len(lines) - 1) * 7
    return "".join(f'<text class="{cls}" x="{x:.0f}" y="{top + i * 14:.0f}" text-anchor="middle" '
                   f'dominant-baseline="middle">{escape(line)}</text>' for i, line in enumerate(lines))


EMPTY = '<svg xmlns="http://www.w3.org/2000/svg" class="bpmn-diagram empty" width="0" height="0"></svg>'


def render_svg(xml: str | bytes, classes: dict[str, set[str]] | None = None, process_id: str | None = None) -> str:
    """The diagram of the BPMN XML as one `<svg>`; `classes` adds CSS classes per element id."""
    classes = classes or {}
    layout = _layout(xml if isinstance(xml, str) else xml.decode(), process_id)
    if layout is None:
        return EMPTY
    head, items = layout
    out = [head]
    for element_id, kind, quoted_id, body in items:
        extra = classes.get(element_id)
        css = f"bpmn-element {kind} {' '.join(sorted(extra))}" if extra else f"bpmn-element {kind}"
        out.append(f'<g class="{css}" data-element="{quoted_id}">{body}</g>')
    out.append("</svg>")
    return "".join(out)


@lru_cache(maxsize=64)
def _layout(xml: str, process_id: str | None):
    """(the svg's opening, [(element id, kind, quoted id, inner svg)] in drawing order): per definition, once."""
    root = etree.fromstring(xml.encode(), safe_xml_parser())
    elements = {n.get("id"): n for n in root.iter() if isinstance(n.tag, str) and n.get("id")}
    planes = root.findall(".//bpmndi:BPMNPlane", NS)
    if process_id is not None:
        wanted = {process_id} | {p.get("id") for p in root.findall(".//bpmn:participant", NS)
                                 if p.get("processRef") == process_id}
        planes = [p for p in planes if p.get("bpmnElement") in wanted
                  or elements.get(p.get("bpmnElement")) is not None
                  and _kind(elements[p.get("bpmnElement")]) == "collaboration"] or planes
    plane = planes[0] if planes else None
    if plane is None:
        return None
    shapes, edges, xs, ys = [], [], [], []
    for shape in plane.findall("bpmndi:BPMNShape", NS):
        b = shape.find("dc:Bounds", NS)
        if b is None:
            continue
        x, y, w, h = (float(b.get(k, 0)) for k in ("x", "y", "width", "height"))
        xs += [x, x + w]
        ys += [y, y + h]
        shapes.append((shape.get("bpmnElement"), x, y, w, h))
    for edge in plane.findall("bpmndi:BPMNEdge", NS):
        points = [(float(p.get("x", 0)), float(p.get("y", 0))) for p in edge.findall("di:waypoint", NS)]
        xs += [p[0] for p in points]
        ys += [p[1] for p in points]
        edges.append((edge.get("bpmnElement"), points))
    if not xs:
        return None
    left, top = min(xs) - MARGIN, min(ys) - MARGIN
    width, height = max(xs) - left + MARGIN, max(ys) - top + MARGIN
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="bpmn-diagram" role="img" '
            f'viewBox="{left:.0f} {top:.0f} {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrow-head"/></marker></defs>')
    items = []

    def item(element_id, kind, body):
        items.append((element_id, kind, escape(element_id or "", {'"': "&quot;"}), body))

    containers = [s for s in shapes if _kind(elements.get(s[0])) in ("participant", "lane")]
    others = [s for s in shapes if s not in containers]
    for element_id, x, y, w, h in containers:
        node = elements.get(element_id)
        name = (node.get("name") if node is not None else "") or ""
        body = f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}"/>'
        if name:
            cx, cy = x + 15, y + h / 2
            body += (f'<text class="lane-label" x="{cx:.0f}" y="{cy:.0f}" text-anchor="middle" '
                     f'transform="rotate(-90 {cx:.0f} {cy:.0f})">{escape(name)}</text>')
        item(element_id, _kind(node), body)
    for element_id, points in edges:
        node = elements.get(element_id)
        d = " ".join(f"{px:.0f},{py:.0f}" for px, py in points)
        body = f'<polyline points="{d}" marker-end="url(#arrow)"/>'
        name = (node.get("name") if node is not None else "") or ""
        if name and len(points) >= 2:
            (ax, ay), (bx, by) = points[len(points) // 2 - 1], points[len(points) // 2]
            body += _text((ax + bx) / 2, (ay + by) / 2 - 8, name, 120, "flow-label")
        item(element_id, _kind(node), body)
    for element_id, x, y, w, h in others:
        node = elements.get(element_id)
        kind = _kind(node)
        name = (node.get("name") if node is not None else "") or ""
        cx, cy = x + w / 2, y + h / 2
        body = f"<title>{escape(name or element_id or '')}</title>"
        if kind in EVENTS:
            body += f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="{min(w, h) / 2:.0f}"/>'
            if name:
                body += _text(cx, y + h + 14, name, 90)
        elif kind in GATEWAYS:
            body += (f'<polygon points="{cx:.0f},{y:.0f} {x + w:.0f},{cy:.0f} {cx:.0f},{y + h:.0f} '
                     f'{x:.0f},{cy:.0f}"/>')
            if name:
                body += _text(cx, y + h + 14, name, 90)
        else:
            body += f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="8"/>'
            if name:
                body += _text(cx, cy, name, int(w))
        item(element_id, kind, body)
    return head, tuple(items)


@lru_cache(maxsize=256)
def element_ids(xml: str) -> frozenset[str]:
    """The ids of a BPMN source's flow elements (a stored version's source never changes: cached)."""
    root = etree.fromstring(xml.encode("utf-8"), safe_xml_parser())
    return frozenset(n.get("id") for n in root.xpath("//bpmn:process//*[@id]", namespaces=NS))


@lru_cache(maxsize=256)
def call_activities(xml: str) -> dict[str, str]:
    """Call activity id → the process it calls."""
    root = etree.fromstring(xml.encode("utf-8"), safe_xml_parser())
    return {n.get("id"): n.get("calledElement") for n in root.xpath("//bpmn:callActivity", namespaces=NS)}
