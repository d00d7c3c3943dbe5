"""Diagram interchange (shapes and edges) for BPMN files written without it.

The diagrams under ``bpmn/`` are written by hand: they hold the process but no
``bpmndi:BPMNDiagram``, so bpmn-js would show an empty canvas. ``add_layout`` draws
them once, left to right: every node gets a column from the longest path that
reaches it (back edges ignored), every lane (department) a horizontal band, every
collapsed subprocess its own drill-down plane. Files that already carry shapes are
returned untouched; the modeler keeps what staff draw from then on.
"""

import logging
from collections import defaultdict

from lxml import etree

from engine.xmlsafe import CheckFailed, bpmn_local, bpmn_tag, parse_xml

logger = logging.getLogger(__name__)

DI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DD_NS = "http://www.omg.org/spec/DD/20100524/DI"
NSMAP = {"bpmndi": DI_NS, "dc": DC_NS, "di": DD_NS}

COLUMN = 170        # distance between the centres of two columns
ROW = 130           # height of one row inside a band
POOL_LABEL = 30     # the vertical title strip of a pool
MARGIN = 60         # from a band's left edge to the first column's left edge

SIZES = {"event": (36, 36), "gateway": (50, 50), "task": (100, 80)}
NODE_TAGS = frozenset({
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "subProcess", "adHocSubProcess", "transaction", "callActivity",
    "exclusiveGateway", "inclusiveGateway", "parallelGateway", "complexGateway",
    "eventBasedGateway", "startEvent", "endEvent", "intermediateCatchEvent",
    "intermediateThrowEvent"})
CONTAINER_TAGS = frozenset({"subProcess", "adHocSubProcess", "transaction"})


def has_layout(root):
    """Whether the document already draws at least one shape."""
    return next(root.iter("{%s}BPMNShape" % DI_NS), None) is not None


def add_layout(data):
    """The BPMN file ``data`` (bytes or text) with a generated layout when it has none.

    Returns bytes. Anything that cannot be parsed, or that is drawn already, comes back
    as it was: the deploy check, not the layout, reports broken files.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        tree = parse_xml(raw)
    except CheckFailed:
        return raw
    root = tree.getroot()
    if root.tag != bpmn_tag("definitions") or has_layout(root):
        return raw
    for old in root.findall("{%s}BPMNDiagram" % DI_NS):
        root.remove(old)

    diagrams = _Diagrams(root)
    diagrams.draw_all()
    for diagram in root.findall("{%s}BPMNDiagram" % DI_NS):
        etree.indent(diagram, space="  ", level=1)
        previous = diagram.getprevious()
        if previous is not None:
            previous.tail = "\n  "
        diagram.tail = "\n"
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def _kind(local):
    if local.endswith("Event"):
        return "event"
    if local.endswith("Gateway"):
        return "gateway"
    return "task"


class _Box:
    __slots__ = ("x", "y", "w", "h")

    def __init__(self, x, y, w, h):
        self.x, self.y, self.w, self.h = int(x), int(y), int(w), int(h)

    @property
    def cx(self):
        return self.x + self.w // 2

    @property
    def cy(self):
        return self.y + self.h // 2

    @property
    def right(self):
        return self.x + self.w

    @property
    def bottom(self):
        return self.y + self.h


class _Diagrams:
    """Builds one ``BPMNDiagram`` per top-level view and per collapsed subprocess."""

    def __init__(self, root):
        self.root = root
        self.count = 0

    def _new_plane(self, element_id):
        self.count += 1
        diagram = etree.Element("{%s}BPMNDiagram" % DI_NS, nsmap=NSMAP)
        diagram.set("id", "BPMNDiagram_%d" % self.count)
        plane = etree.SubElement(diagram, "{%s}BPMNPlane" % DI_NS)
        plane.set("id", "BPMNPlane_%d" % self.count)
        plane.set("bpmnElement", element_id)
        # The schema wants diagrams after the root elements and before relationships.
        relationship = self.root.find(bpmn_tag("relationship"))
        if relationship is not None:
            relationship.addprevious(diagram)
        else:
            self.root.append(diagram)
        return plane

    def draw_all(self):
        processes = {p.get("id"): p for p in self.root.iter(bpmn_tag("process"))}
        drawn = set()
        for collaboration in self.root.findall(bpmn_tag("collaboration")):
            plane = self._new_plane(collaboration.get("id"))
            top = 50
            for participant in collaboration.findall(bpmn_tag("participant")):
                process = processes.get(participant.get("processRef"))
                top = self._pool(plane, participant, process, top) + 40
                if process is not None:
                    drawn.add(process.get("id"))
        for process_id, process in processes.items():
            if process_id not in drawn:
                plane = self._new_plane(process_id)
                _Layout(self, plane, process, lanes=_leaf_lanes(process)).place(110, 50)

    def _pool(self, plane, participant, process, top):
        """Draw a pool with its lanes and contents from ``top``; return its bottom."""
        if process is None:
            _shape(plane, participant.get("id"), _Box(50, top, 600, 100), horizontal=True)
            return top + 100
        layout = _Layout(self, plane, process, lanes=_leaf_lanes(process))
        width, height = layout.place(50 + POOL_LABEL + MARGIN, top)
        pool = _Box(50, top, POOL_LABEL + MARGIN + width + MARGIN, height)
        _shape(plane, participant.get("id"), pool, horizontal=True, first=True)
        band_top = top
        for lane_id, band_height in layout.bands:
            if lane_id:
                _shape(plane, lane_id, _Box(pool.x + POOL_LABEL, band_top,
                                            pool.w - POOL_LABEL, band_height),
                       horizontal=True, after=participant.get("id"))
            band_top += band_height
        return top + height

    def subprocess(self, container):
        """Give a collapsed subprocess its own plane, laid out like a process."""
        plane = self._new_plane(container.get("id"))
        _Layout(self, plane, container, lanes=[]).place(110, 50)


def _leaf_lanes(process):
    """[(lane id, {node ids})] for the innermost lanes, in document order."""
    lanes = []
    for lane in process.iter(bpmn_tag("lane")):
        if lane.find(bpmn_tag("childLaneSet")) is not None:
            continue
        refs = {(ref.text or "").strip() for ref in lane.findall(bpmn_tag("flowNodeRef"))}
        lanes.append((lane.get("id"), refs))
    return lanes


def _shape(plane, element_id, box, horizontal=None, expanded=None, first=False, after=None):
    shape = etree.Element("{%s}BPMNShape" % DI_NS)
    shape.set("id", "%s_di" % element_id)
    shape.set("bpmnElement", element_id)
    if horizontal is not None:
        shape.set("isHorizontal", "true" if horizontal else "false")
    if expanded is not None:
        shape.set("isExpanded", "true" if expanded else "false")
    bounds = etree.SubElement(shape, "{%s}Bounds" % DC_NS)
    for name, value in (("x", box.x), ("y", box.y), ("width", box.w), ("height", box.h)):
        bounds.set(name, str(value))
    # Pools and lanes come first so that bpmn-js draws them beneath the nodes.
    if first:
        plane.insert(0, shape)
    elif after is not None:
        anchor = plane.find("{%s}BPMNShape[@bpmnElement='%s']" % (DI_NS, after))
        index = list(plane).index(anchor) + 1 if anchor is not None else 0
        while index < len(plane) and plane[index].get("isHorizontal") is not None:
            index += 1
        plane.insert(index, shape)
    else:
        plane.append(shape)
    return shape


def _edge(plane, element_id, points):
    edge = etree.SubElement(plane, "{%s}BPMNEdge" % DI_NS)
    edge.set("id", "%s_di" % element_id)
    edge.set("bpmnElement", element_id)
    previous = None
    for x, y in points:
        if (x, y) == previous:
            continue
        point = etree.SubElement(edge, "{%s}waypoint" % DD_NS)
        point.set("x", str(int(x)))
        point.set("y", str(int(y)))
        previous = (x, y)


class _Layout:
    """Columns, bands and rows for the flow nodes directly inside one container."""

    def __init__(self, diagrams, plane, container, lanes):
        self.diagrams = diagrams
        self.plane = plane
        self.container = container
        self.nodes = [el for el in container
                      if bpmn_local(el) in NODE_TAGS and el.get("id")]
        self.ids = {el.get("id"): el for el in self.nodes}
        self.boundaries = [el for el in container
                           if bpmn_local(el) == "boundaryEvent" and el.get("id")
                           and el.get("attachedToRef") in self.ids]
        self.host = {b.get("id"): b.get("attachedToRef") for b in self.boundaries}
        self.flows = [f for f in container.findall(bpmn_tag("sequenceFlow"))
                      if self._known(f.get("sourceRef")) and self._known(f.get("targetRef"))]
        self.lanes = lanes
        self.bands = []
        self.boxes = {}

    def _known(self, element_id):
        return element_id in self.ids or element_id in self.host

    def _edges(self):
        """Node-to-node edges for layering: a boundary event counts as its host."""
        edges = []
        for flow in self.flows:
            source = self.host.get(flow.get("sourceRef"), flow.get("sourceRef"))
            target = self.host.get(flow.get("targetRef"), flow.get("targetRef"))
            if source != target:
                edges.append((source, target, flow.get("sourceRef") in self.host))
        return edges

    def _columns(self, edges):
        succ = defaultdict(list)
        has_incoming = set()
        for source, target, _boundary in edges:
            succ[source].append(target)
            has_incoming.add(target)
        order = [n.get("id") for n in self.nodes]
        roots = [i for i in order if bpmn_local(self.ids[i]) == "startEvent"]
        roots += [i for i in order if i not in has_incoming and i not in roots]
        roots += [i for i in order if i not in roots]

        # Iterative depth-first search: an edge into the current path is a back edge.
        back, seen = set(), set()
        for root in roots:
            if root in seen:
                continue
            seen.add(root)
            path, stack = {root}, [(root, iter(succ[root]))]
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    path.discard(node)
                elif child in path:
                    back.add((node, child))
                elif child not in seen:
                    seen.add(child)
                    path.add(child)
                    stack.append((child, iter(succ[child])))

        column = {i: 0 for i in order}
        forward = [(s, t) for s, t, _b in edges if (s, t) not in back]
        incoming = defaultdict(int)
        for _s, target in forward:
            incoming[target] += 1
        ready = [i for i in order if incoming[i] == 0]
        outgoing = defaultdict(list)
        for source, target in forward:
            outgoing[source].append(target)
        while ready:
            node = ready.pop(0)
            for target in outgoing[node]:
                column[target] = max(column[target], column[node] + 1)
                incoming[target] -= 1
                if incoming[target] == 0:
                    ready.append(target)
        return column

    def _band_of(self):
        band = {}
        for lane_id, refs in self.lanes:
            for ref in refs:
                band.setdefault(ref, lane_id)
        return band

    def place(self, left, top):
        """Draw every node and flow with the first column at ``left``; return (w, h)."""
        edges = self._edges()
        column = self._columns(edges)
        band_of = self._band_of()
        band_ids = [lane_id for lane_id, _refs in self.lanes]
        if not band_ids or any(n not in band_of for n in self.ids):
            band_ids.append(None)

        preds = defaultdict(list)
        for source, target, from_boundary in edges:
            if column[source] < column[target]:
                preds[target].append((source, from_boundary))
        row, taken = {}, defaultdict(set)
        order = {n.get("id"): pos for pos, n in enumerate(self.nodes)}
        for node in sorted(self.ids, key=lambda i: (column[i], order[i])):
            band = band_of.get(node)
            wanted = [row[s] + (1 if b else 0) for s, b in preds[node]
                      if s in row and band_of.get(s) == band]
            slot = round(sum(wanted) / len(wanted)) if wanted else 0
            while (column[node], slot) in taken[band]:
                slot += 1
            row[node] = slot
            taken[band].add((column[node], slot))

        band_top = {}
        y = top
        for band in band_ids:
            rows = 1 + max((r for (_c, r) in taken[band]), default=0)
            band_top[band] = y
            self.bands.append((band, rows * ROW))
            y += rows * ROW

        for node_id, el in self.ids.items():
            local = bpmn_local(el)
            w, h = SIZES[_kind(local)]
            cx = left + 50 + column[node_id] * COLUMN
            cy = band_top[band_of.get(node_id)] + row[node_id] * ROW + ROW // 2
            box = _Box(cx - w // 2, cy - h // 2, w, h)
            self.boxes[node_id] = box
            if local in CONTAINER_TAGS:
                _shape(self.plane, node_id, box, expanded=False)
                self.diagrams.subprocess(el)
            elif local == "exclusiveGateway":
                _shape(self.plane, node_id, box).set("isMarkerVisible", "true")
            else:
                _shape(self.plane, node_id, box)

        self._place_boundaries()
        for flow in self.flows:
            _edge(self.plane, flow.get("id"), self._route(flow))

        width = 100 + max(column.values(), default=0) * COLUMN
        return width, y - top

    def _place_boundaries(self):
        count = defaultdict(int)
        for event in self.boundaries:
            host = self.boxes[event.get("attachedToRef")]
            index = count[event.get("attachedToRef")]
            count[event.get("attachedToRef")] += 1
            x = max(host.x, host.right - 44 - index * 42)
            self.boxes[event.get("id")] = _Box(x, host.bottom - 18, 36, 36)
            _shape(self.plane, event.get("id"), self.boxes[event.get("id")])

    def _route(self, flow):
        source = self.boxes[flow.get("sourceRef")]
        target = self.boxes[flow.get("targetRef")]
        if flow.get("sourceRef") in self.host:
            below = source.bottom + 20
            if target.cy > source.bottom:
                return [(source.cx, source.bottom), (source.cx, target.cy),
                        (target.x, target.cy)]
            return [(source.cx, source.bottom), (source.cx, below), (target.x - 20, below),
                    (target.x - 20, target.cy), (target.x, target.cy)]
        if target.x > source.right:
            if source.cy == target.cy:
                return [(source.right, source.cy), (target.x, target.cy)]
            if bpmn_local(self.ids[flow.get("sourceRef")]).endswith("Gateway"):
                start_y = source.y if target.cy < source.cy else source.bottom
                return [(source.cx, start_y), (source.cx, target.cy), (target.x, target.cy)]
            middle = (source.right + target.x) // 2
            return [(source.right, source.cy), (middle, source.cy), (middle, target.cy),
                    (target.x, target.cy)]
        # A flow back to an earlier column runs beneath both ends.
        below = max(source.bottom, target.bottom) + 25
        return [(source.cx, source.bottom), (source.cx, below), (target.cx, below),
                (target.cx, target.bottom)]

