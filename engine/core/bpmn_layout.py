"""Diagram information (BPMNDI) for a BPMN file that has none: an automatic layered layout.

Modelling tools and the web console draw a procedure from its BPMNDI (each
shape's bounds, each flow's waypoints). A file written by hand, generated,
or exported by a tool that drops the layout has none, and then neither a
designer's modeller nor the console can show it. `layout_definitions` adds
one diagram per process (on its participant's pool when a collaboration
names one) drawn the usual way, left to right:

* columns by the longest path from a start event, with the loops' back
  flows set aside (a boundary event's flows count as leaving its task);
* one horizontal band per lane, in the lane set's order, the band as tall
  as its busiest column; elements of no lane in a band of their own;
* boundary events on the lower edge of their task; flows as orthogonal
  polylines, back flows routed below their elements.

The layout is deterministic (the same file gives the same diagram), so
deploying a laid-out file again is not a change. Only the `bpmndi` part
is written: the process semantics, and so the file's behaviour, stay as
they are (`engine.core.bpmn_diff` ignores layout).
"""
from __future__ import annotations

from collections import defaultdict

from lxml import etree

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
EVENTS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent"}
GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
SKIP = {"sequenceFlow", "laneSet", "lane", "boundaryEvent", "extensionElements", "documentation", "ioSpecification",
        "dataObject", "dataObjectReference", "dataStoreReference", "textAnnotation", "association",
        "multiInstanceLoopCharacteristics", "standardLoopCharacteristics"}
SIZES = {"task": (110, 80), "event": (36, 36), "gateway": (50, 50)}
COLUMN = 170          # distance between columns
ROW = 120             # height of one row inside a lane band
LANE_HEADER = 30      # the band's label strip on the left
LEFT = 80             # the pool's own label strip
TOP = 40


def _local(node) -> str:
    return etree.QName(node).localname


def _shape_kind(tag: str) -> str:
    if tag in EVENTS:
        return "event"
    if tag in GATEWAYS:
        return "gateway"
    return "task"


def has_layout(root) -> bool:
    return bool(root.findall(".//bpmndi:BPMNPlane", NS))


def layout_definitions(root, force: bool = False) -> bool:
    """Add a diagram for every process of this `bpmn:definitions` tree; False when it has one already."""
    if has_layout(root) and not force:
        return False
    for old in root.findall("bpmndi:BPMNDiagram", NS):
        root.remove(old)
    participants = {p.get("processRef"): p for p in root.findall(".//bpmn:participant", NS)}
    collaboration = root.find("bpmn:collaboration", NS)
    processes = root.findall("bpmn:process", NS)
    if collaboration is not None:
        # One plane for the collaboration: the pools stacked top to bottom.
        diagram, plane = _diagram(root, collaboration.get("id"))
        top = TOP
        for process in processes:
            top = _layout_process(plane, process, participants.get(process.get("id")), top) + 40
    else:
        for process in processes:
            diagram, plane = _diagram(root, process.get("id"))
            _layout_process(plane, process, None, TOP)
    return True


def _diagram(root, element_id: str):
    diagram = etree.SubElement(root, f"{{{NS['bpmndi']}}}BPMNDiagram", id=f"diagram_{element_id}")
    plane = etree.SubElement(diagram, f"{{{NS['bpmndi']}}}BPMNPlane", id=f"plane_{element_id}",
                             bpmnElement=element_id)
    return diagram, plane


def _bounds(parent, x: float, y: float, w: float, h: float) -> None:
    etree.SubElement(parent, f"{{{NS['dc']}}}Bounds", x=f"{x:.0f}", y=f"{y:.0f}", width=f"{w:.0f}",
                     height=f"{h:.0f}")


def _shape(plane, element_id: str, x, y, w, h, horizontal: bool = False) -> None:
    attrs = {"id": f"{element_id}_di", "bpmnElement": element_id}
    if horizontal:
        attrs["isHorizontal"] = "true"
    shape = etree.SubElement(plane, f"{{{NS['bpmndi']}}}BPMNShape", attrs)
    _bounds(shape, x, y, w, h)


def _edge(plane, element_id: str, points) -> None:
    edge = etree.SubElement(plane, f"{{{NS['bpmndi']}}}BPMNEdge", id=f"{element_id}_di", bpmnElement=element_id)
    for px, py in points:
        etree.SubElement(edge, f"{{{NS['di']}}}waypoint", x=f"{px:.0f}", y=f"{py:.0f}")


def _columns(nodes: list[str], starts: list[str], succ: dict[str, list[str]]) -> tuple[dict[str, int], set]:
    """Longest-path columns over the flow graph without its back edges; (columns, back edges)."""
    back, state = set(), {}

    def visit(n):  # iterative DFS: a diagram may be long
        stack = [(n, iter(succ.get(n, ())))]
        state[n] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if state.get(child) == 1:
                    back.add((node, child))
                elif child not in state:
                    state[child] = 1
                    stack.append((child, iter(succ.get(child, ()))))
                    break
            else:
                state[node] = 2
                stack.pop()

    for n in starts + nodes:
        if n not in state:
            visit(n)
    indegree = defaultdict(int)
    for n in nodes:
        for m in succ.get(n, ()):
            if (n, m) not in back:
                indegree[m] += 1
    column = {n: 0 for n in nodes}
    ready = [n for n in nodes if indegree[n] == 0]
    while ready:
        n = ready.pop(0)
        for m in succ.get(n, ()):
            if (n, m) in back:
                continue
            column[m] = max(column[m], column[n] + 1)
            indegree[m] -= 1
            if indegree[m] == 0:
                ready.append(m)
    return column, back


def _layout_process(plane, process, participant, top: float) -> float:
    """Lay out one process from `top`; the bottom of what was drawn."""
    kinds, order = {}, []
    for node in process:
        if not isinstance(node.tag, str) or not node.get("id"):
            continue
        tag = _local(node)
        if tag not in SKIP:
            kinds[node.get("id")] = tag
            order.append(node.get("id"))
    boundary = {b.get("id"): b.get("attachedToRef") for b in process.findall("bpmn:boundaryEvent", NS)}
    flows = [(f.get("id"), f.get("sourceRef"), f.get("targetRef")) for f in process.findall("bpmn:sequenceFlow", NS)]
    succ: dict[str, list[str]] = defaultdict(list)
    for _fid, source, target in flows:
        source = boundary.get(source, source)
        if source in kinds and target in kinds:
            succ[source].append(target)
    starts = [n for n in order if kinds[n] == "startEvent"]
    column, back = _columns(order, starts, succ)

    lanes = [(lane.get("id"), [(r.text or "").strip() for r in lane.findall("bpmn:flowNodeRef", NS)])
             for lane in process.findall("bpmn:laneSet/bpmn:lane", NS)]
    lane_of = {}
    for lane_id, members in lanes:
        for m in members:
            lane_of.setdefault(m, lane_id)
    bands = [lane_id for lane_id, _ in lanes]
    if any(n not in lane_of for n in order):
        bands.append(None)
    slots: dict[tuple, list[str]] = defaultdict(list)   # (band, column) -> nodes, first seen first
    for n in order:
        slots[(lane_of.get(n), column[n])].append(n)
    rows = {band: max([len(v) for (b, _c), v in slots.items() if b == band] or [1]) for band in bands}

    x0 = LEFT + LANE_HEADER + (30 if participant is not None else 0)
    width = x0 + (max(column.values(), default=0) + 1) * COLUMN + 20 - LEFT
    band_top, y = {}, top
    for band in bands:
        band_top[band] = y
        y += rows[band] * ROW
    bottom = y
    pool_left = LEFT - 30 if participant is not None else LEFT
    if participant is not None:
        _shape(plane, participant.get("id"), pool_left, top, width + 30, bottom - top, horizontal=True)
    for lane_id, _members in lanes:
        _shape(plane, lane_id, LEFT, band_top[lane_id], width, rows[lane_id] * ROW, horizontal=True)

    box = {}
    for (band, col), members in slots.items():
        for i, n in enumerate(members):
            w, h = SIZES[_shape_kind(kinds[n])]
            cx = x0 + col * COLUMN + COLUMN / 2
            cy = band_top[band] + i * ROW + ROW / 2
            box[n] = (cx - w / 2, cy - h / 2, w, h)
            _shape(plane, n, *box[n])
    attached = defaultdict(int)
    for b, task in boundary.items():
        if task not in box:
            continue
        tx, ty, tw, th = box[task]
        i = attached[task]
        attached[task] += 1
        box[b] = (tx + 8 + i * 40, ty + th - 18, 36, 36)
        _shape(plane, b, *box[b])

    for fid, source, target in flows:
        if source not in box or target not in box:
            continue
        sx, sy, sw, sh = box[source]
        tx, ty, tw, th = box[target]
        owner = boundary.get(source, source)
        if source in boundary:
            start = (sx + sw / 2, sy + sh)
            end = (tx, ty + th / 2) if tx > sx else (tx + tw / 2, ty + th)
            points = [start, (start[0], max(sy + sh, ty + th) + 16), (end[0] if tx <= sx else end[0] - 20,
                                                                       max(sy + sh, ty + th) + 16)]
            points += [(end[0] - 20, end[1]), end] if tx > sx else [end]
        elif (owner, target) in back or column.get(target, 0) <= column.get(owner, 0):
            below = max(sy + sh, ty + th) + 18
            points = [(sx + sw / 2, sy + sh), (sx + sw / 2, below), (tx + tw / 2, below), (tx + tw / 2, ty + th)]
        else:
            start, end = (sx + sw, sy + sh / 2), (tx, ty + th / 2)
            mid = end[0] - 20
            points = [start, (mid, start[1]), (mid, end[1]), end] if start[1] != end[1] else [start, end]
        _edge(plane, fid, _dedupe(points))
    return bottom


def _dedupe(points):
    out = []
    for p in points:
        if not out or (round(out[-1][0]), round(out[-1][1])) != (round(p[0]), round(p[1])):
            out.append(p)
    return out


def layout_xml(data: bytes, force: bool = False) -> bytes | None:
    """The file with a diagram added (None when it has one and `force` is not set)."""
    from engine.core.definitions import safe_xml_parser

    root = etree.fromstring(data, parser=safe_xml_parser())
    if not layout_definitions(root, force=force):
        return None
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
