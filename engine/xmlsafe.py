"""Safe reading of untrusted BPMN/DMN files for the deploy check: XML parsing, schema
validation, the Python inside them (parsed with ast, never run), loading into spiff, and
the ``Problem`` record the check reports.

Diagrams are uploaded by office staff, so every file is treated as hostile: no entity is
ever expanded, no DTD or network resource is ever loaded, and size is capped before
parsing. ``engine.checks`` builds on this module; callers normally import from there.
"""

import ast
import logging
import threading
from dataclasses import dataclass

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

logger = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"

# lxml schema objects keep their error log on the object, so concurrent validations
# (threads of one web worker) must not interleave.
_SCHEMA_LOCK = threading.Lock()
_DMN_VALIDATORS = {}

# code -> (Chinese, English) templates; the values come from Problem.params.
MESSAGES = {
    "xml_too_large": (
        "文件太大（{size} 字节），上限为 {limit} 字节",
        "the file is too large ({size} bytes, the limit is {limit})"),
    "xml_malformed": (
        "XML 格式错误：{detail}",
        "malformed XML: {detail}"),
    "xml_entities": (
        "文件声明了 DOCTYPE 实体（ENTITY），出于安全原因拒绝接收；请删除 DOCTYPE 声明",
        "the file declares DOCTYPE entities (ENTITY) and is refused for safety; "
        "remove the DOCTYPE"),
    "xml_schema": (
        "不符合 BPMN/DMN 规范（XML 模式校验）：{detail}",
        "violates the BPMN/DMN XML schema: {detail}"),
    "unknown_document": (
        "无法识别的文件：根元素 {tag} 既不是 BPMN 也不是 DMN 的 definitions",
        "unrecognised file: the root element {tag} is neither BPMN nor DMN definitions"),
    "no_executable_process": (
        "文件中没有可执行的流程（请在 process 上设置 isExecutable=\"true\"）",
        "the file has no executable process (set isExecutable=\"true\" on a process)"),
    "duplicate_process": (
        "流程 ID {process} 在多个文件中重复",
        "process id {process} is defined in more than one file"),
    "no_start_event": (
        "流程没有开始事件",
        "the process has no start event"),
    "subprocess_events": (
        "子流程必须恰好有一个开始事件、至少一个结束事件（现有开始事件 {starts} 个、"
        "结束事件 {ends} 个）",
        "a subprocess needs exactly one start event and at least one end event "
        "(it has {starts} start and {ends} end events)"),
    "unsupported_element": (
        "流程引擎不支持 {tag} 元素；即使它不可达也请删除或替换",
        "the workflow engine does not support <{tag}>; remove or replace it, "
        "even if it is unreachable"),
    "unsupported_event": (
        "流程引擎不支持在 {event} 上使用 {definition}：它会被当作普通事件静默执行",
        "the workflow engine does not support a {definition} on a {event}: "
        "it would silently run as a plain event"),
    "unsupported_compensation": (
        "流程引擎不支持补偿（{tag}）：补偿处理永远不会执行",
        "the workflow engine does not support compensation ({tag}): it would never run"),
    "unsupported_data_store": (
        "流程引擎没有数据存储 {name} 的实现",
        "the workflow engine has no implementation of the data store {name}"),
    "transaction_limited": (
        "事务子流程按普通子流程执行：只支持取消事件，不会回滚也不会补偿",
        "a transaction runs as a plain subprocess: only cancel events work, "
        "nothing is rolled back or compensated"),
    "timer_missing": (
        "定时器没有设置时间（timeDate、timeDuration 或 timeCycle）",
        "the timer has no timeDate, timeDuration or timeCycle expression"),
    "unquoted_timer": (
        "定时器表达式 {expr} 必须加引号，写成 \"{expr}\"",
        "timer expression {expr} must be quoted as \"{expr}\""),
    "timer_invalid_literal": (
        "定时器 {kind} 的值 {expr} 不是有效的 ISO 8601 格式（例如 {example}）",
        "the timer {kind} value {expr} is not valid ISO 8601 (for example {example})"),
    "timer_syntax": (
        "定时器表达式 {expr} 不是有效的 Python 表达式：{detail}",
        "timer expression {expr} is not a valid Python expression: {detail}"),
    "expression_whitespace": (
        "表达式 {expr} 前后有换行或缩进，引擎原样求值时会出错；请删除多余的空白",
        "expression {expr} has surrounding line breaks or indentation that make the "
        "engine fail when it evaluates it as written; remove the extra whitespace"),
    "script_syntax": (
        "{where} 脚本有语法错误（脚本第 {script_line} 行）：{detail}",
        "the {where} script has a syntax error (script line {script_line}): {detail}"),
    "script_empty": (
        "脚本任务没有脚本内容",
        "the script task has no script"),
    "condition_missing": (
        "从网关 {gateway} 出发的非默认连线没有条件",
        "this non-default flow out of gateway {gateway} has no condition"),
    "condition_syntax": (
        "条件 {expr} 不是有效的 Python 表达式：{detail}",
        "condition {expr} is not a valid Python expression: {detail}"),
    "condition_unknown_name": (
        "条件 {expr} 中的名称 {name} 未定义：它不是表单字段、脚本变量、决策表输出、"
        "数据对象或可用函数",
        "condition {expr} uses {name}, which is not a form field, script variable, "
        "decision output, data object or available function"),
    "gateway_no_default": (
        "网关有条件分支但没有默认分支：如果条件都不成立，流程会出错停止",
        "the gateway has conditional flows but no default flow: if no condition holds "
        "the process stops with an error"),
    "unknown_lane": (
        "泳道“{lane}”不是已知的用户组",
        "lane \"{lane}\" is not a known user group"),
    "user_task_no_form": (
        "用户任务没有 form 属性（spiffworkflow:properties 中名为 form 的属性）",
        "the user task has no form property (a spiffworkflow:properties entry named form)"),
    "unknown_form": (
        "用户任务引用的表单“{form}”不存在",
        "the user task refers to form \"{form}\", which does not exist"),
    "invalid_due": (
        "属性 {prop} 的值 {value} 无效：应为 ISO 8601 时长（如 P5D、PT4H）或工作日数（如 3WD）",
        "property {prop} has the invalid value {value}: use an ISO 8601 duration "
        "(P5D, PT4H) or working days (3WD)"),
    "decision_missing": (
        "业务规则任务没有指定决策（spiffworkflow:calledDecisionId）",
        "the business rule task names no decision (spiffworkflow:calledDecisionId)"),
    "unknown_decision": (
        "业务规则任务引用的决策“{decision}”不在本次部署的 DMN 文件中",
        "the business rule task calls decision \"{decision}\", which is not in the "
        "deployed DMN files"),
    "dmn_decisions": (
        "DMN 文件必须恰好包含一个决策（现有 {count} 个）",
        "a DMN file must hold exactly one decision (it has {count})"),
    "dmn_no_table": (
        "决策没有决策表（decisionTable）",
        "the decision has no decision table"),
    "duplicate_decision": (
        "决策 ID {decision} 在多个文件中重复",
        "decision id {decision} is defined in more than one file"),
    "service_operator_missing": (
        "服务任务没有指定操作（spiffworkflow:serviceTaskOperator 的 id）",
        "the service task names no operator (spiffworkflow:serviceTaskOperator id)"),
    "automatic_loop": (
        "自动循环（{nodes}）中没有用户任务或定时器：约 500 次迭代后引擎会静默停止；"
        "请改用多实例任务",
        "the automatic loop ({nodes}) contains no user task or timer: the engine "
        "silently stops after about 500 iterations; use a multi-instance task instead"),
    "recursive_call": (
        "调用活动调用了流程 {process}，形成递归调用",
        "the call activity calls process {process}, which leads back to itself"),
    "call_missing_target": (
        "调用活动没有指定被调用的流程（calledElement）",
        "the call activity names no process to call (calledElement)"),
    "call_unknown_process": (
        "被调用的流程“{process}”不在本次部署的文件中：请把它和调用方一起部署",
        "the called process \"{process}\" is not in these files: deploy it together "
        "with its caller"),
    "call_not_executable": (
        "被调用的流程 {process} 不可执行（isExecutable 为 false）",
        "the called process {process} is not executable (isExecutable is false)"),
    "unreachable": (
        "从任何开始事件都无法到达此元素，它永远不会执行",
        "no start event leads to this element: it will never run"),
    "diagram_too_deep": (
        "图中连续的元素太多，引擎解析时超出递归深度；请拆分成子流程或改用多实例任务",
        "the chain of elements is too long for the engine's parser (recursion limit); "
        "split it into subprocesses or use a multi-instance task"),
    "spiff_refused": (
        "流程引擎无法解析此图：{detail}",
        "the workflow engine cannot parse the diagram: {detail}"),
    "internal_error": (
        "检查程序内部出错（{detail}），为安全起见拒绝部署",
        "the deploy check failed internally ({detail}); deploy refused to be safe"),
}


class _Params(dict):
    """Format mapping that leaves a visible marker instead of raising on a missing key."""

    def __missing__(self, key):
        return "?"


@dataclass(frozen=True)
class Problem:
    """One finding of the deploy check, located by element id and 1-based source line."""

    code: str
    element_id: str | None
    line: int | None
    severity: str
    params: dict
    filename: str | None = None

    def message(self, locale="zh") -> str:
        """Return one plain sentence naming the line and element, Chinese unless locale is en."""
        english = str(locale or "").lower().startswith("en")
        templates = MESSAGES.get(self.code)
        if templates is None:
            text = self.code
        else:
            template = templates[1] if english else templates[0]
            text = template.format_map(_Params(self.params or {}))
        where = []
        if english:
            if self.line is not None:
                where.append("line %d" % self.line)
            if self.element_id:
                where.append("element %s" % self.element_id)
            return "%s: %s" % (", ".join(where), text) if where else text
        if self.line is not None:
            where.append("第 %d 行" % self.line)
        if self.element_id:
            where.append("元素 %s" % self.element_id)
        return "%s：%s" % ("，".join(where), text) if where else text

    def to_dict(self, locale="zh") -> dict:
        """Return the JSON-ready form: code, element_id, line, severity, message, filename."""
        return {
            "code": self.code,
            "element_id": self.element_id,
            "line": self.line,
            "severity": self.severity,
            "message": self.message(locale),
            "filename": self.filename,
        }


class CheckFailed(Exception):
    """Raised when files cannot be accepted; ``problems`` lists why (at least one error)."""

    def __init__(self, problems):
        self.problems = list(problems)
        first = self.problems[0].message("en") if self.problems else "check failed"
        super().__init__(first)


def _entity_declaration_line(data: bytes) -> int | None:
    """Return the line of the first ``<!ENTITY`` in data, in any common encoding, or None.

    The scan runs on raw bytes before lxml sees them, so a billion-laughs document is
    refused without libxml2 ever building its entity table.
    """
    for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        marker = "<!ENTITY".encode(encoding)
        index = data.find(marker)
        if index >= 0:
            return data[:index].count("\n".encode(encoding)) + 1
    return None


def _refuse(code, filename, line=None, **params):
    raise CheckFailed([Problem(code, None, line, "error", params, filename)])


def parse_xml(data: bytes, filename=None):
    """Parse untrusted XML safely and return the lxml ElementTree.

    No entity is expanded, no DTD or network resource is loaded and huge trees are
    refused. Raises CheckFailed with one problem: ``xml_too_large`` over 5 MB,
    ``xml_entities`` for any DOCTYPE declaring an entity (XXE, billion laughs),
    ``xml_malformed`` (with the parser's line) for anything that is not well-formed XML.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_BYTES:
        _refuse("xml_too_large", filename, size=len(data), limit=MAX_BYTES)
    entity_line = _entity_declaration_line(data)
    if entity_line is not None:
        logger.warning("refused %s: DOCTYPE declares an entity", filename)
        _refuse("xml_entities", filename, entity_line)
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        dtd_validation=False, collect_ids=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno and exc.lineno > 0 else None
        _refuse("xml_malformed", filename, line, detail=exc.msg or str(exc))
    except (ValueError, etree.LxmlError) as exc:
        _refuse("xml_malformed", filename, None, detail=str(exc))
    if root is None:
        _refuse("xml_malformed", filename, 1, detail="empty document")
    tree = root.getroottree()
    # Belt and braces: an entity declaration the byte scan missed (an exotic encoding)
    # or an unexpanded entity reference still refuses the file.
    dtd = tree.docinfo.internalDTD
    has_entities = dtd is not None and any(True for _ in dtd.iterentities())
    if has_entities or any(True for _ in root.iter(etree.Entity)):
        logger.warning("refused %s: entity found after parsing", filename)
        _refuse("xml_entities", filename, 1)
    return tree


# ---- documents ----------------------------------------------------------------------

def bpmn_tag(local):
    """Clark notation of a BPMN model tag: bpmn_tag("task") -> "{...MODEL}task"."""
    return "{%s}%s" % (BPMN_NS, local)


def spiff_tag(local):
    """Clark notation of a spiffworkflow extension tag."""
    return "{%s}%s" % (SPIFF_NS, local)


def bpmn_local(el):
    """Local name of a BPMN-namespace element, None for anything else (comments too)."""
    tag = el.tag
    if isinstance(tag, str) and tag.startswith("{%s}" % BPMN_NS):
        return tag[len(BPMN_NS) + 2:]
    return None


def shorten(text, limit=80):
    """text on one line, cut to limit characters for a message."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def local_name(el):
    """Local name of any element, None for comments and processing instructions."""
    return etree.QName(el).localname if isinstance(el.tag, str) else None


def event_definitions(el):
    """(kind, definition element) for each event definition directly under an event."""
    for child in el:
        local = bpmn_local(child)
        if local and local.endswith("EventDefinition"):
            yield local[:-len("EventDefinition")], child
        elif local == "eventDefinitionRef":
            yield "referenced", child


def spiff_text(el, name):
    """Text of the spiffworkflow extension element name under el, or None."""
    node = el.find("%s/%s" % (bpmn_tag("extensionElements"), spiff_tag(name)))
    return None if node is None else node.text


def properties(el):
    """spiffworkflow:properties of el as a dict (a later duplicate wins, as in spiff)."""
    props = {}
    path = "%s/%s/%s" % (
        bpmn_tag("extensionElements"), spiff_tag("properties"), spiff_tag("property"))
    for prop in el.iterfind(path):
        props[prop.get("name")] = prop.get("value")
    return props


class Document:
    """One safely parsed file: its tree, kind (bpmn or dmn) and an id index."""

    def __init__(self, filename, tree):
        self.filename = filename
        self.tree = tree
        self.root = tree.getroot()
        namespace = etree.QName(self.root).namespace or ""
        is_dmn = str(filename or "").lower().endswith(".dmn") or "/DMN/" in namespace.upper()
        self.kind = "dmn" if is_dmn else "bpmn"
        self.namespace = namespace
        self._ids = None

    def element(self, element_id):
        """The first element with this id, or None."""
        if self._ids is None:
            self._ids = {}
            for el in self.root.iter():
                if isinstance(el.tag, str) and el.get("id") is not None:
                    self._ids.setdefault(el.get("id"), el)
        return self._ids.get(element_id)

    def problem(self, code, el, severity="error", **params):
        """A problem located at el, or at its nearest ancestor that has an id."""
        node = el
        while node is not None and node.get("id") is None:
            node = node.getparent()
        if node is None:
            return Problem(code, None, el.sourceline, severity, params, self.filename)
        return Problem(code, node.get("id"), node.sourceline, severity, params, self.filename)


def _dmn_schema(namespace):
    path = DMN_SCHEMAS.get(namespace)
    if path is None:
        return None
    if namespace not in _DMN_VALIDATORS:
        _DMN_VALIDATORS[namespace] = BpmnValidator(path).validator
    return _DMN_VALIDATORS[namespace]


def schema_problems(doc):
    """xml_schema problems of doc against the BPMN+spiff or DMN schema spiff would use."""
    root_name = etree.QName(doc.root)
    if doc.kind == "dmn" and (root_name.localname != "definitions"
                              or "/DMN/" not in (root_name.namespace or "").upper()):
        return [doc.problem("unknown_document", doc.root, tag=etree.QName(doc.root).localname)]
    with _SCHEMA_LOCK:
        if doc.kind == "bpmn":
            # spiff renames a tag bpmn-js gets wrong before validating; do the same.
            VALIDATOR.preprocess(doc.tree)
            schema = VALIDATOR.validator
        else:
            schema = _dmn_schema(doc.namespace)
            if schema is None:
                return []
        if schema.validate(doc.tree):
            return []
        errors = [(err.line, err.message) for err in schema.error_log][:10]
    problems = []
    for line, message in errors:
        on_line = [el for el in doc.root.iter()
                   if isinstance(el.tag, str) and el.sourceline == line and el.get("id")]
        element_id = on_line[0].get("id") if on_line else None
        problems.append(Problem("xml_schema", element_id, line or None, "error",
                                {"detail": message}, doc.filename))
    return problems


# ---- Python inside the XML (parsed with ast, never run) ----------------------------

def assigned_names(script):
    """Names a script binds at top level or anywhere (over-approximation is fine here)."""
    try:
        tree = ast.parse(clean_code(script))
    except Exception:  # noqa: BLE001 - a broken script is reported by its own check
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
    return names


def free_names(tree):
    """Names an expression reads, minus those it binds itself (comprehensions, lambdas)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.comprehension):
            bound.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Lambda):
            args = node.args
            every = args.posonlyargs + args.args + args.kwonlyargs
            every += [a for a in (args.vararg, args.kwarg) if a is not None]
            bound.update(a.arg for a in every)
        elif isinstance(node, ast.NamedExpr):
            bound.add(node.target.id)
    used = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id not in bound and node.id not in used:
                used.append(node.id)
    return used


def clean_code(text):
    """The code a tolerant host would run: common indentation and blank edges removed."""
    lines = text.strip("\n").splitlines()
    indents = [len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(ln[cut:] for ln in lines).strip()


def compiles_as_written(text, mode):
    """Whether the raw text compiles as it stands.

    Engines compile expressions verbatim: RestrictedPython refuses even one leading
    space, spiff's default eval a leading line break followed by indentation.
    """
    try:
        compile(text, "<bpmn>", mode)
    except Exception:  # noqa: BLE001 - any compile failure means "not as written"
        return False
    return True


def parse_expression(text):
    """(ast, None) for a valid Python expression (after clean_code), else (None, reason)."""
    try:
        return ast.parse(clean_code(text), mode="eval"), None
    except SyntaxError as exc:
        return None, exc.msg
    except Exception as exc:  # noqa: BLE001 - e.g. too deeply nested: still a user error
        return None, type(exc).__name__


# ---- loading into spiff -------------------------------------------------------------

def load_parser(docs, validator):
    """Feed parsed documents to a fresh spiff parser and force every spec to parse.

    Raises whatever spiff raises (ValidationException mostly) for a refused diagram.
    """
    parser = SpiffBpmnParser(validator=validator)
    for doc in docs:
        if doc.kind == "dmn":
            parser.add_dmn_xml(doc.root, filename=doc.filename)
        else:
            parser.add_bpmn_xml(doc.tree, filename=doc.filename)
    # spiff parses lazily: errors only surface when a spec or a decision is built.
    parser.find_all_specs()
    for process_id in parser.get_process_ids():
        parser.get_subprocess_specs(process_id)
    for dmn_parser in parser.dmn_parsers.values():
        if dmn_parser.decision is None:
            dmn_parser.parse()
    return parser


def spiff_problem(exc, docs):
    """Turn whatever spiff raised into a Problem with an element id and line when known."""
    detail = str(exc.args[0]) if exc.args else type(exc).__name__
    if isinstance(exc, RecursionError) or "recursion" in detail.lower():
        code, detail = "diagram_too_deep", ""
    else:
        code = "spiff_refused"
    element_id = getattr(exc, "id", "") or None
    filename = getattr(exc, "file_name", "") or None
    line = getattr(exc, "line_number", None)
    line = int(line) if isinstance(line, int) or str(line or "").isdigit() else None
    candidates = [d for d in docs if d.filename == filename] or docs
    if element_id:
        for doc in candidates:
            el = doc.element(element_id)
            if el is not None:
                line, filename = line or el.sourceline, doc.filename
                break
    if filename is None and len(docs) == 1:
        filename = docs[0].filename
    return Problem(code, element_id, line, "error", {"detail": shorten(detail, 300)}, filename)


def spiff_refusal(docs):
    """The Problem spiff raises when it parses docs as deploy will, or None if it accepts.

    The schema is not checked again here: callers validated the documents already.
    """
    try:
        load_parser(docs, None)
    except Exception as exc:  # noqa: BLE001 - any refusal becomes a problem
        return spiff_problem(exc, docs)
    return None


def parse_documents(files):
    """(documents, problems) for files: each file either parses safely or adds problems."""
    docs, problems = [], []
    for name, data in files.items():
        try:
            docs.append(Document(name, parse_xml(data, name)))
        except CheckFailed as exc:
            problems.extend(exc.problems)
    return docs, problems


def parse_specs(files: dict[str, bytes]) -> SpiffBpmnParser:
    """Load .bpmn/.dmn files into a SpiffBpmnParser(validator=VALIDATOR) and return it.

    Every file goes through ``parse_xml`` first, so spiff only ever sees the safe tree.
    Every executable process and every decision is parsed before returning, so a
    returned parser's ``get_spec`` does not fail. Raises CheckFailed for unsafe or
    malformed XML, schema violations and anything the spiff parser refuses, with the
    element id and a line looked up in the XML when spiff gives none.
    """
    docs, problems = parse_documents(files)
    for doc in docs:
        problems.extend(schema_problems(doc))
    if problems:
        raise CheckFailed(problems)
    try:
        # spiff validates again with the shared VALIDATOR, whose error log is not
        # thread-safe: hold the same lock as schema_problems.
        with _SCHEMA_LOCK:
            return load_parser(docs, VALIDATOR)
    except Exception as exc:  # noqa: BLE001 - ValidationException, lxml or worse
        logger.info("spiff refused %s: %s", sorted(files), exc)
        raise CheckFailed([spiff_problem(exc, docs)]) from exc

