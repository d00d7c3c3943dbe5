"""Versions of a process as policy staff see them: upload, drawing, and the diff of two.

A version is created by ``deploy.deploy_unit`` (check, parse once, store the spec);
this module adds what the office needs around it: uploads whose process must match
the URL's key and may leave out the decision tables the latest version already has,
the diagram with a layout for bpmn-js, and what changed between two versions.
"""

import dataclasses
import json
import logging
import re
from functools import lru_cache

from lxml import etree

from engine import checks, deploy, layout
from engine.errors import N_, BadInput, DeployRefused
from engine.serialization import load_spec, serializer
from engine.xmlsafe import Problem, bpmn_tag

logger = logging.getLogger(__name__)

FILE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}\.(bpmn|dmn)$")
PROCESS_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
_DECISION_REF = re.compile(r"calledDecisionId>\s*([^<\s]+)\s*<")

# Problems this module finds itself, in the two languages of engine.xmlsafe.MESSAGES.
UPLOAD_MESSAGES = {
    "process_key_mismatch": (
        "文件中没有 ID 为 {key} 的可执行流程（文件中的流程：{found}）",
        "the file has no executable process with the id {key} (it has: {found})"),
    "no_bpmn_file": (
        "没有 BPMN 文件：请上传一个 .bpmn 文件",
        "there is no BPMN file: upload one .bpmn file"),
    "several_bpmn_files": (
        "一次只能部署一个 BPMN 文件（收到 {count} 个）",
        "deploy one BPMN file at a time (got {count})"),
    "bad_file_name": (
        "文件名 {name} 无效：只能用字母、数字、点、下划线和连字符，以 .bpmn 或 .dmn 结尾",
        "the file name {name} is invalid: use letters, digits, dots, underscores and "
        "hyphens, ending in .bpmn or .dmn"),
}

# What a changed attribute of a task spec means to policy staff (SpecDiff's keys).
ATTRIBUTE_LABELS = {
    "bpmn_name": N_("名称"),
    "description": N_("类型说明"),
    "lane": N_("部门（泳道）"),
    "extensions": N_("属性（表单、期限）"),
    "inputs": N_("前序连线"),
    "outputs": N_("后续连线"),
    "event_definition": N_("事件定义（定时器、消息等）"),
    "cond_task_specs": N_("网关条件"),
    "default_task_spec": N_("默认分支"),
    "script": N_("脚本"),
    "prescript": N_("前置脚本"),
    "postscript": N_("后置脚本"),
    "decision_table": N_("决策表"),
    "operation_name": N_("服务操作"),
    "operation_params": N_("服务参数"),
    "result_variable": N_("结果变量"),
    "cancel_activity": N_("是否中断"),
    "typename": N_("元素类型"),
}
# SpiffWorkflow orders a gateway's outgoing flows by the height of their targets in the
# drawing: moving shapes can reorder them, which matters only when conditions overlap.
ORDER_LABELS = {
    "inputs": N_("前序连线的顺序"),
    "outputs": N_("后续连线的顺序（由图中位置决定）"),
    "cond_task_specs": N_("网关条件的判断顺序（由图中位置决定）"),
}
# Attributes that only restate another change, or that spiff derives itself.
_NOISE = frozenset({"name", "manual", "lookahead", "data_input_associations",
                    "data_output_associations", "io_specification", "documentation"})


@dataclasses.dataclass(frozen=True)
class UploadProblem(Problem):
    """A problem of the upload itself (the files, the key), worded like the deploy check."""

    def message(self, locale="zh") -> str:
        english = str(locale or "").lower().startswith("en")
        templates = UPLOAD_MESSAGES.get(self.code)
        if templates is None:
            return super().message(locale)
        text = templates[1 if english else 0].format(**self.params)
        if english:
            where = ["line %d" % self.line] if self.line is not None else []
            where += ["element %s" % self.element_id] if self.element_id else []
            return "%s: %s" % (", ".join(where), text) if where else text
        where = ["第 %d 行" % self.line] if self.line is not None else []
        where += ["元素 %s" % self.element_id] if self.element_id else []
        return "%s：%s" % ("，".join(where), text) if where else text


def _refuse(code, element_id=None, line=None, filename=None, **params):
    problem = UploadProblem(code, element_id, line, "error", params, filename)
    raise DeployRefused("流程图无法执行", [problem])


# -- the unit to deploy ----------------------------------------------------------------------

def unit_files(key, files):
    """The deploy unit for ``key`` from uploaded ``{name: bytes}``; refuses what cannot be one.

    The BPMN file is stored under the name the process already uses (so re-uploading the
    same XML finds the same content hash), and decision tables the diagram calls but the
    upload leaves out are taken from the latest version.
    """
    for name in files:
        if not FILE_NAME.match(name):
            _refuse("bad_file_name", name=name)
    # Hostile or broken XML is named first, in any file: it must never be read further.
    unreadable, trees = [], {}
    for name, data in files.items():
        try:
            trees[name] = checks.parse_xml(data, name)
        except checks.CheckFailed as exc:
            unreadable += exc.problems
    if unreadable:
        raise DeployRefused("流程图无法执行", unreadable)
    bpmn = [name for name in files if name.endswith(".bpmn")]
    if not bpmn:
        _refuse("no_bpmn_file")
    if len(bpmn) > 1:
        _refuse("several_bpmn_files", count=len(bpmn))
    _check_key(key, bpmn[0], trees[bpmn[0]].getroot())

    latest = deploy.latest_version(key)
    unit = {name: data for name, data in files.items() if name.endswith(".dmn")}
    unit[_bpmn_name(key, latest)] = files[bpmn[0]]
    if latest is not None:
        wanted = set(_DECISION_REF.findall(files[bpmn[0]].decode("utf-8", "replace")))
        provided = "".join(data.decode("utf-8", "replace") for name, data in unit.items()
                           if name.endswith(".dmn"))
        for name, text in latest.files.items():
            if name.endswith(".dmn") and name not in unit:
                if any(f'id="{d}"' in text and f'id="{d}"' not in provided for d in wanted):
                    unit[name] = text.encode("utf-8")
    return unit


def _bpmn_name(key, latest):
    if latest is not None:
        for name in latest.files:
            if name.endswith(".bpmn"):
                return name
    return f"{key}.bpmn"


def _check_key(key, filename, root):
    processes = [p for p in root.iter(bpmn_tag("process"))
                 if p.get("isExecutable", "true") == "true"]
    if key in {p.get("id") for p in processes}:
        return
    anchor = processes[0] if processes else root
    found = "、".join(p.get("id") or "?" for p in processes) or "-"
    _refuse("process_key_mismatch", anchor.get("id"), anchor.sourceline, filename,
            key=key, found=found)


def check(key, files, forms, script_names):
    """Every problem of a would-be version of ``key`` (errors and warnings).

    The check ``deploy_files`` runs, nothing deployed: a key with no version yet is the
    check of a new process's first version, not an unknown process.
    """
    if not PROCESS_KEY.match(key or ""):
        raise BadInput("流程标识无效", process=key)
    try:
        unit = unit_files(key, files)
    except DeployRefused as exc:
        return exc.problems
    return deploy.check_unit(unit, forms, script_names)


def deploy_files(key, files, forms, deployed_by, reason, script_names):
    """Deploy uploaded files as the next version of ``key``.

    Returns (version, created, warnings). Identical content gives the latest version and
    ``created`` False; any error raises ``DeployRefused`` listing element ids and lines.
    """
    if not PROCESS_KEY.match(key or ""):
        raise BadInput("流程标识无效", process=key)
    unit = unit_files(key, files)
    problems = deploy.check_unit(unit, forms, script_names)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DeployRefused("流程图无法执行", errors)
    version, created = deploy.deploy_unit(unit, forms, deployed_by, reason, script_names)
    if created:
        logger.info("%s deployed %s v%s: %s", deployed_by, key, version.version, reason)
    return version, created, [p for p in problems if p.severity != "error"]


# -- drawing ---------------------------------------------------------------------------------

def bpmn_file(files):
    """(name, text) of the BPMN file of a deploy unit."""
    for name, text in files.items():
        if name.endswith(".bpmn"):
            return name, text
    raise BadInput("没有 BPMN 文件")


def diagram_xml(version):
    """The version's BPMN with a layout bpmn-js can draw (generated when it has none)."""
    _name, text = bpmn_file(version.files)
    return drawn(text)


@lru_cache(maxsize=128)
def drawn(text):
    """BPMN text with a layout (generated once per distinct text; versions never change)."""
    return layout.add_layout(text).decode("utf-8")


# -- the diff of two versions ----------------------------------------------------------------

def diff_versions(key, a, b):
    """What changed from version ``a`` to ``b`` of ``key``: elements and files.

    Elements are aligned by id, then by position (SpiffWorkflow's ``SpecDiff``), in the
    process and every subprocess it calls. A version whose diagram only moved shapes
    shows its BPMN file as ``layout`` and, at most, flows in a new order (SpiffWorkflow
    orders a gateway's flows by position), marked ``order_only``.
    """
    old, new = deploy.get_version(key, a), deploy.get_version(key, b)
    old_spec, old_subs = load_spec(old.id, old.spec)
    new_spec, new_subs = load_spec(new.id, new.spec)

    pairs = [(key, old_spec, new_spec)]
    for name in sorted(set(old_subs) | set(new_subs)):
        pairs.append((name, old_subs.get(name), new_subs.get(name)))
    added, removed, changed = [], [], []
    for process, before, after in pairs:
        if before is None:
            added.extend(_element(s, process) for s in _visible(after.task_specs.values()))
            continue
        if after is None:
            removed.extend(_element(s, process) for s in _visible(before.task_specs.values()))
            continue
        spec_diff = SpecDiffResult(before, after)
        added.extend(_element(s, process) for s in _visible(spec_diff.added))
        removed.extend(_element(s, process) for s in _visible(spec_diff.removed))
        changed.extend(spec_diff.changed_elements(process))

    return {
        "process_key": key,
        "from_version": old.version,
        "to_version": new.version,
        "added": added,
        "removed": removed,
        "changed": changed,
        "files": _file_changes(old.files, new.files),
    }


class SpecDiffResult:
    """SpiffWorkflow's SpecDiff of two process specs, told in BPMN elements."""

    def __init__(self, before, after):
        from SpiffWorkflow.bpmn.util.diff import SpecDiff

        self.registry = serializer.registry
        self.diff = SpecDiff(self.registry, before, after)
        self.after = after

    @property
    def added(self):
        return self.diff.added

    @property
    def removed(self):
        return self.diff.removed

    def changed_elements(self, process):
        found = {}
        for spec, keys in self.diff.changed.items():
            element_id = _bpmn_id(spec)
            if element_id is None:
                continue
            new_spec = self.diff.alignment.get(spec)
            old_dict = self.registry.convert(spec)
            new_dict = self.registry.convert(new_spec) if new_spec is not None else {}
            entry = found.setdefault(element_id, _element(spec, process, new_spec))
            for key in keys:
                if key in _NOISE or (key == "name" and spec.bpmn_id):
                    continue
                if any(c["attribute"] == key for c in entry["changes"]):
                    continue
                before, after = old_dict.get(key), new_dict.get(key)
                if key in ("inputs", "outputs"):
                    before, after = _element_ids(before), _element_ids(after)
                    if before == after:
                        continue
                reordered = order_only(key, before, after)
                entry["changes"].append({
                    "attribute": key,
                    "label": ORDER_LABELS[key] if reordered else ATTRIBUTE_LABELS.get(key, key),
                    "order_only": reordered,
                    "before": _describe(before),
                    "after": _describe(after),
                })
        return [e for e in found.values() if e["changes"]]


def order_only(key, before, after):
    """Whether a list attribute changed only its order (the same items, rearranged)."""
    if key not in ORDER_LABELS or not isinstance(before, list) or not isinstance(after, list):
        return False
    def canonical(items):
        return sorted(json.dumps(item, sort_keys=True, ensure_ascii=False) for item in items)
    return before != after and canonical(before) == canonical(after)


def _bpmn_id(spec):
    """The BPMN element a task spec belongs to (spiff adds helpers named ``<id>.Xyz``)."""
    if getattr(spec, "bpmn_id", None):
        return spec.bpmn_id
    base = str(spec.name).split(".")[0]
    owner = spec._wf_spec.task_specs.get(base) if getattr(spec, "_wf_spec", None) else None
    return base if owner is not None and getattr(owner, "bpmn_id", None) else None


def _element_ids(names):
    """Task spec names as the BPMN ids they belong to ("review.BoundaryEventSplit")."""
    ids = []
    for name in names or []:
        base = str(name).split(".")[0]
        if base not in ids:
            ids.append(base)
    return ids


def _visible(specs):
    return [s for s in specs if getattr(s, "bpmn_id", None)]


def _element(spec, process, new_spec=None):
    shown = new_spec if new_spec is not None else spec
    owner = spec
    if not getattr(spec, "bpmn_id", None):
        owner = spec._wf_spec.task_specs.get(_bpmn_id(spec)) or spec
    return {
        "element_id": _bpmn_id(spec),
        "name": getattr(owner, "bpmn_name", None) or getattr(shown, "bpmn_name", None),
        "type": type(owner).__name__,
        "lane": getattr(owner, "lane", None),
        "process": process,
        "changes": [],
    }


def _describe(value, limit=300):
    """A short readable form of a serialized attribute value."""
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {"properties"}:
        value = value["properties"]
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                            sort_keys=True)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _file_changes(before, after):
    changes = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            state = "added"
        elif name not in after:
            state = "removed"
        elif before[name] == after[name]:
            state = "same"
        elif name.endswith(".bpmn") and _without_drawing(before[name]) == _without_drawing(
                after[name]):
            state = "layout"
        else:
            state = "changed"
        changes.append({"file": name, "state": state})
    return changes


def _without_drawing(text):
    """The semantic part of a BPMN file: its XML without diagram interchange, canonical."""
    try:
        root = checks.parse_xml(text.encode("utf-8")).getroot()
    except checks.CheckFailed:
        return text
    for diagram in root.findall("{%s}BPMNDiagram" % layout.DI_NS):
        root.remove(diagram)
    for el in root.iter():
        if isinstance(el.tag, str):
            el.text = (el.text or "").strip() or None
            el.tail = None
    return etree.tostring(root, method="c14n")
