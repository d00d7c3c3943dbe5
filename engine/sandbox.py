"""The restricted Python that BPMN diagrams run: scripts, conditions, timers, DMN cells.

SpiffWorkflow's default script engine is plain ``eval``/``exec`` with every builtin, so a
diagram could ``import os``. Here every expression and script is compiled with
RestrictedPython under :class:`SandboxTransformer`, which refuses imports, class
definitions and names or attributes starting with ``_``, and rewrites the operators that
can build huge values (``+ * ** << %``) into calls to size-checking guards. The compiled
code runs with :data:`SAFE_BUILTINS`, guarded attribute/item/iteration access, the
domain functions the host offers, and a wall-clock deadline.

What a script may touch
    Task data (as globals), the safe builtins, the offered functions. Attributes are
    readable only on plain data types (str, numbers, list, dict, tuple, set, range,
    datetime, timedelta, UUID) and a few class methods (``dict.fromkeys``,
    ``datetime.now``...). Host objects returned by functions are opaque: return plain
    data from them.

What a script leaves behind
    Names a script binds become task data. Task data must stay serializable by spiff's
    serializer (JSON plus datetime, timedelta, UUID), so new or rebound values are checked:
    only None, bool, int, float, str, list, tuple (stored as a list), dict with string
    keys, datetime, timedelta and UUID are accepted, anything else raises
    :class:`SandboxViolation` naming the key. Functions and lambdas a script defines are
    dropped, as spiff does. Values mutated in place (``items.append(x)``) are not
    re-checked.

Limits (known, deliberate)
    * The time bound is checked on line and call events of sandbox code and at the top of
      every ``while`` body; a single long C-level call (sorting a million items, a domain
      function blocking on I/O) is not interrupted, only caught at the next line.
    * Memory guards stop single operations that would build a value over
      :data:`MAX_SEQUENCE_LENGTH` elements or :data:`MAX_INT_BITS` bits, including
      ``str()``/f-strings/``%`` of containers full of repeated references. Allocation
      spread over many operations inside the time bound (a loop appending megabyte
      lists), or C helpers that multiply their input (``list(zip(*[big] * 30))``), is not
      bounded: run workers under an OS memory limit (RLIMIT_AS, cgroup) for a hard cap.
    * While a script runs, ``sys.settrace`` is ours; a debugger or coverage tracer is
      suspended for that time and restored afterwards.
    * Domain functions and services must not swallow :class:`ScriptTimeout` or
      :class:`SandboxViolation` raised by sandbox callbacks they were handed.
"""

from __future__ import annotations

import ast
import builtins
import functools
import json
import keyword
import logging
import math
import operator
import re
import sys
import threading
import time
import traceback
import uuid
from datetime import date, datetime, timedelta
from datetime import time as time_of_day

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import (
    INSPECT_ATTRIBUTES,
    IOPERATOR_TO_STR,
    RestrictingNodeTransformer,
    copy_locations,
)
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import (
    BasePythonScriptEngineEnvironment,
    PythonScriptEngine,
)
from SpiffWorkflow.exceptions import SpiffWorkflowException

logger = logging.getLogger(__name__)

#: Filename given to sandbox code objects; frames with it are the ones the clock watches.
SANDBOX_FILENAME = "<sandbox>"
DEFAULT_TIME_LIMIT = 1.0
#: Longest str/list/tuple/bytes (and widest range) a single operation may produce.
MAX_SEQUENCE_LENGTH = 1_000_000
#: Largest integer (in bits) that '*', '**' and '<<' may produce; well under the
#: 4300-digit limit Python puts on int/str conversion, so results stay serializable.
MAX_INT_BITS = 10_000
#: Widest field a format spec ('%10d', f'{x:>10}') may ask for.
MAX_FORMAT_WIDTH = 10_000
COMPILE_CACHE_SIZE = 1024


class SandboxViolation(Exception):
    """The sandbox refused a script or expression; the message names what was refused.

    Raised at compile time (import, ``_`` names, class definitions...) and at run time
    (private attributes, oversized values, unavailable builtins, unstorable task data).
    ``line_number`` is the script line when known.
    """

    def __init__(self, message, line_number=None):
        super().__init__(message)
        self.line_number = line_number


class ScriptTimeout(Exception):
    """A script or expression ran past its wall-clock time limit."""


class UnknownService(LookupError):
    """A service task named an operation the host does not offer."""


# -- compilation ------------------------------------------------------------------------

_GUARDED_BINOPS = {
    ast.Add: "_add_",
    ast.Mult: "_mul_",
    ast.Pow: "_pow_",
    ast.LShift: "_lshift_",
    ast.Mod: "_mod_",
}
_NUMBER_IN_SPEC = re.compile(r"\d+")


def _call(name, args, located):
    """An ``ast.Call`` of the sandbox helper ``name``, placed at ``located``'s position."""
    node = ast.Call(func=ast.Name(name, ast.Load()), args=list(args), keywords=[])
    copy_locations(node, located)
    return node


def _statement_call(name, located):
    node = ast.Expr(value=ast.Call(func=ast.Name(name, ast.Load()), args=[], keywords=[]))
    copy_locations(node, located)
    return node


class SandboxTransformer(RestrictingNodeTransformer):
    """RestrictedPython's policy, tightened for diagram scripts.

    On top of RestrictedPython (no ``_`` names or attributes, guarded attribute and item
    access, no exec/eval) it refuses imports, classes, star-unpacking in displays and
    dynamic or very wide format specs; routes ``+ * ** << %`` through size guards;
    allows ``data[key] += value``; ticks the clock at the top of every ``while`` body;
    and starts every ``except``/``finally`` body with a guard so a script cannot swallow
    a timeout or a refusal.
    """

    def visit_Import(self, node):
        self.error(node, "import statements are not allowed.")
        return node

    visit_ImportFrom = visit_Import

    def visit_ClassDef(self, node):
        self.error(node, "class definitions are not allowed.")
        return node

    def visit_BinOp(self, node):
        node = self.node_contents_visit(node)
        guard = _GUARDED_BINOPS.get(type(node.op))
        if guard is None:
            return node
        return _call(guard, [node.left, node.right], node)

    def visit_AugAssign(self, node):
        if not isinstance(node.target, ast.Subscript):
            # Names go through _inplacevar_; attributes are refused by RestrictedPython.
            return super().visit_AugAssign(node)
        if any(isinstance(part, ast.Slice) for part in ast.walk(node.target.slice)):
            self.error(node, "augmented assignment to a slice is not allowed.")
            return node
        node = self.node_contents_visit(node)
        # The target is now '_write_(container)[key]'. Evaluate container and key once,
        # as Python does, then store the guarded in-place result.
        holder, key = self.gen_tmp_name(), self.gen_tmp_name()
        read = _call("_getitem_", [ast.Name(holder, ast.Load()), ast.Name(key, ast.Load())],
                     node)
        new_value = _call("_inplacevar_",
                          [ast.Constant(IOPERATOR_TO_STR[type(node.op)]), read, node.value],
                          node)
        statements = [
            ast.Assign(targets=[ast.Name(holder, ast.Store())], value=node.target.value),
            ast.Assign(targets=[ast.Name(key, ast.Store())], value=node.target.slice),
            ast.Assign(targets=[ast.Subscript(value=ast.Name(holder, ast.Load()),
                                              slice=ast.Name(key, ast.Load()),
                                              ctx=ast.Store())],
                       value=new_value),
        ]
        for statement in statements:
            copy_locations(statement, node)
        return statements

    def visit_While(self, node):
        node = super().visit_While(node)
        # CPython 3.11 emits no line event for a loop that jumps to itself
        # ('while True: pass'), so the tracer alone cannot stop it.
        node.body.insert(0, _statement_call("_tick_", node))
        return node

    def visit_ExceptHandler(self, node):
        node = super().visit_ExceptHandler(node)
        node.body.insert(0, _statement_call("_handler_guard_", node))
        return node

    def visit_Try(self, node):
        node = super().visit_Try(node)
        if node.finalbody:
            node.finalbody.insert(0, _statement_call("_handler_guard_", node.finalbody[0]))
        return node

    def _refuse_starred(self, node):
        if isinstance(getattr(node, "ctx", None), (ast.Store, ast.Del)):
            return
        if any(isinstance(element, ast.Starred) for element in node.elts):
            self.error(node, "'*' unpacking inside a list, tuple or set display is not "
                             "allowed; use + instead.")

    def visit_List(self, node):
        self._refuse_starred(node)
        return super().visit_List(node)

    def visit_Tuple(self, node):
        self._refuse_starred(node)
        return super().visit_Tuple(node)

    def visit_Set(self, node):
        self._refuse_starred(node)
        return super().visit_Set(node)

    def visit_FormattedValue(self, node):
        node = super().visit_FormattedValue(node)
        spec = node.format_spec
        if spec is not None:
            if any(not isinstance(part, ast.Constant) for part in spec.values):
                self.error(node, "format specs computed at run time are not allowed.")
            else:
                text = "".join(str(part.value) for part in spec.values)
                if any(len(n) > 6 or int(n) > MAX_FORMAT_WIDTH
                       for n in _NUMBER_IN_SPEC.findall(text)):
                    self.error(node, f"format widths over {MAX_FORMAT_WIDTH} are not "
                                     "allowed.")
        node.value = _call("_text_guard_", [node.value], node.value)
        return node


_ERROR_LINE = re.compile(r"^Line (\d+):")


@functools.lru_cache(maxsize=COMPILE_CACHE_SIZE)
def _compile(source, mode):
    # Parse first so a plain typo stays a SyntaxError (with its line) rather than
    # looking like a security refusal.
    tree = ast.parse(source, SANDBOX_FILENAME, mode)
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(tree, filename=SANDBOX_FILENAME, policy=SandboxTransformer)
    if result.errors:
        message = "; ".join(result.errors)
        match = _ERROR_LINE.match(result.errors[0])
        logger.warning("sandbox refused to compile %r: %s", source[:200], message)
        raise SandboxViolation(message, line_number=int(match.group(1)) if match else None)
    return result.code


def compile_expression(source):
    """Compile an expression for the sandbox, or raise SyntaxError / SandboxViolation.

    Surrounding whitespace is ignored (diagram XML often wraps conditions in newlines).
    Results are cached by source text (LRU of :data:`COMPILE_CACHE_SIZE`).
    """
    if not isinstance(source, str):
        raise TypeError(f"expression must be a string, not {type(source).__name__}")
    return _compile(source.strip(), "eval")


def compile_script(source):
    """Compile a script for the sandbox, or raise SyntaxError / SandboxViolation (cached)."""
    if not isinstance(source, str):
        raise TypeError(f"script must be a string, not {type(source).__name__}")
    return _compile(source, "exec")


# -- the clock --------------------------------------------------------------------------

# Deadline of the evaluation running on this thread, for helpers called from sandbox code.
_state = threading.local()


def _timeout():
    limit = getattr(_state, "limit", None) or DEFAULT_TIME_LIMIT
    return ScriptTimeout(f"script ran longer than its time limit of {limit:g} s")


def _make_tracer(deadline):
    clock = time.monotonic

    def trace_lines(frame, event, arg):
        if event == "line" and clock() > deadline:
            raise _timeout()
        return trace_lines

    def trace_calls(frame, event, arg):
        # Only sandbox frames are watched: raising inside host code (a domain function,
        # a guard) could interrupt it half-way through its work.
        if frame.f_code.co_filename != SANDBOX_FILENAME:
            return None
        if clock() > deadline:
            raise _timeout()
        return trace_lines

    return trace_calls


def _tick():
    deadline = getattr(_state, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise _timeout()


def _handler_guard():
    # A raise from the trace function switches tracing off, so a handler that swallowed
    # the timeout could then loop forever: refuse to run any handler body once a
    # refusal is in flight or the deadline has passed.
    current = sys.exc_info()[1]
    if isinstance(current, (ScriptTimeout, SandboxViolation)):
        raise current
    _tick()


# -- run-time guards --------------------------------------------------------------------

_SEQUENCE_TYPES = (str, bytes, list, tuple)


def _refuse(message):
    logger.warning("sandbox refused: %s", message)
    raise SandboxViolation(message)


def _check_length(length, what):
    if length > MAX_SEQUENCE_LENGTH:
        _refuse(f"{what} would build {length} elements, over the limit of "
                f"{MAX_SEQUENCE_LENGTH}")


def _text_size(value, budget):
    """Roughly how many characters ``str(value)`` yields; stops counting past ``budget``.

    Counts every reference, so a list holding the same big string a thousand times is
    as big as it will print.
    """
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) + 3
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            pending.extend(item)
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        else:
            total += 32
        if total > budget:
            break
    return total


def _check_text(value, what):
    if isinstance(value, (str, int, float)) or value is None:
        return
    size = _text_size(value, MAX_SEQUENCE_LENGTH)
    if size > MAX_SEQUENCE_LENGTH:
        _refuse(f"{what} of this value would build more than {MAX_SEQUENCE_LENGTH} "
                "characters")


def _check_add(left, right):
    if isinstance(left, _SEQUENCE_TYPES) and isinstance(right, _SEQUENCE_TYPES):
        _check_length(len(left) + len(right), "'+'")


def _check_mul(left, right):
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            _refuse(f"'*' would build an integer over {MAX_INT_BITS} bits")
    elif isinstance(left, _SEQUENCE_TYPES) and isinstance(right, int):
        _check_length(len(left) * right, "'*'")
    elif isinstance(right, _SEQUENCE_TYPES) and isinstance(left, int):
        _check_length(len(right) * left, "'*'")


def _check_pow(base, exponent):
    if (isinstance(base, int) and isinstance(exponent, int) and exponent > 1
            and abs(base) > 1 and exponent * math.log2(abs(base)) > MAX_INT_BITS):
        _refuse(f"'**' would build an integer over {MAX_INT_BITS} bits")


def _check_lshift(value, shift):
    if (isinstance(value, int) and isinstance(shift, int) and value
            and value.bit_length() + shift > MAX_INT_BITS):
        _refuse(f"'<<' would build an integer over {MAX_INT_BITS} bits")


_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _too_wide(part):
    return part == "*" or (part != "" and (len(part) > 6 or int(part) > MAX_FORMAT_WIDTH))


def _check_mod(left, right):
    if not isinstance(left, str):
        return
    for width, precision in _PERCENT_FIELD.findall(left):
        if _too_wide(width) or _too_wide(precision):
            _refuse(f"'%' formatting with '*' or widths over {MAX_FORMAT_WIDTH} is not "
                    "allowed")
    if len(left) + _text_size(right, MAX_SEQUENCE_LENGTH) > MAX_SEQUENCE_LENGTH:
        _refuse(f"'%' formatting would build more than {MAX_SEQUENCE_LENGTH} characters")


def _guarded_add(left, right):
    if isinstance(left, _SEQUENCE_TYPES):
        _check_add(left, right)
    return left + right


def _guarded_mul(left, right):
    _check_mul(left, right)
    return left * right


def _guarded_pow(base, exponent):
    _check_pow(base, exponent)
    return base ** exponent


def _guarded_lshift(value, shift):
    _check_lshift(value, shift)
    return value << shift


def _guarded_mod(left, right):
    _check_mod(left, right)
    return left % right


_INPLACE_OPERATORS = {
    "+=": (operator.iadd, _check_add),
    "-=": (operator.isub, None),
    "*=": (operator.imul, _check_mul),
    "/=": (operator.itruediv, None),
    "//=": (operator.ifloordiv, None),
    "%=": (operator.imod, _check_mod),
    "**=": (operator.ipow, _check_pow),
    "<<=": (operator.ilshift, _check_lshift),
    ">>=": (operator.irshift, None),
    "|=": (operator.ior, None),
    "^=": (operator.ixor, None),
    "&=": (operator.iand, None),
}


def _guarded_inplace(op, target, value):
    entry = _INPLACE_OPERATORS.get(op)
    if entry is None:
        _refuse(f"the operator '{op}' is not allowed")
    apply, check = entry
    if check is not None:
        check(target, value)
    return apply(target, value)


def _guarded_getitem(container, key):
    return container[key]


def _guarded_write(target):
    # Item assignment and deletion only on the containers task data is made of;
    # attribute assignment on dicts and lists fails by itself.
    if type(target) in (dict, list):
        return target
    _refuse(f"changing {type(target).__name__} objects is not allowed")


def _apply(func, *args, **kwargs):
    return func(*args, **kwargs)


# Attribute access is allowed on instances of exactly these types (not subclasses, which
# a host could have extended with anything).
_ATTRIBUTE_TYPES = frozenset({
    str, int, float, bool, list, dict, tuple, set, frozenset, range,
    datetime, date, time_of_day, timedelta, uuid.UUID})
# ...and on these classes, only for these alternative constructors and constants.
_ATTRIBUTE_CLASSES = frozenset({str, int, float, dict, datetime, timedelta})
_CLASS_ATTRIBUTES = frozenset({
    "fromkeys", "maketrans", "from_bytes", "fromhex", "now", "today", "utcnow",
    "fromisoformat", "strptime", "combine", "fromtimestamp", "utcfromtimestamp",
    "fromordinal", "min", "max", "resolution"})
_DENIED_ATTRIBUTES = frozenset({"format", "format_map", "to_bytes", "mro"})
_GROWING_METHODS = frozenset({
    "join", "ljust", "rjust", "center", "zfill", "expandtabs", "replace", "translate",
    "extend"})


def _grow_guard(obj, name, method):
    """Wrap a str or list method whose result can be far larger than its inputs."""
    if isinstance(obj, list):
        if name != "extend":
            return method

        def extend(iterable):
            items = list(iterable)
            _check_length(len(obj) + len(items), "list.extend()")
            return method(items)
        return extend

    if name == "join":
        def join(iterable):
            items = list(iterable)
            try:
                total = sum(map(len, items)) + len(obj) * max(len(items) - 1, 0)
            except TypeError:
                return method(items)  # let str.join report the non-string item
            _check_length(total, "str.join()")
            return method(items)
        return join

    if name in ("ljust", "rjust", "center", "zfill"):
        def pad(width, *fill):
            if isinstance(width, int):
                _check_length(width, f"str.{name}()")
            return method(width, *fill)
        return pad

    if name == "expandtabs":
        def expandtabs(tabsize=8):
            if isinstance(tabsize, int):
                _check_length(len(obj) + obj.count("\t") * tabsize, "str.expandtabs()")
            return method(tabsize)
        return expandtabs

    if name == "replace":
        def replace(old, new, count=-1):
            if isinstance(old, str) and isinstance(new, str) and len(new) > len(old):
                hits = obj.count(old) if old else len(obj) + 1
                if isinstance(count, int) and count >= 0:
                    hits = min(hits, count)
                _check_length(len(obj) + hits * (len(new) - len(old)), "str.replace()")
            return method(old, new, count)
        return replace

    def translate(table):
        if isinstance(table, dict):
            longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
            _check_length(len(obj) * longest, "str.translate()")
        return method(table)
    return translate


_MISSING = object()


def guarded_getattr(obj, name, default=_MISSING):
    """``getattr`` as scripts see it: plain data only, nothing private, nothing growing.

    Refuses names starting with ``_``, frame/code/generator internals, ``str.format``
    (it can reach attributes through its template), and any attribute of objects that
    are not plain data, raising :class:`SandboxViolation` naming the attribute.
    """
    if not isinstance(name, str):
        raise TypeError("attribute name must be a string")
    if name.startswith("_") or name in INSPECT_ATTRIBUTES or name in _DENIED_ATTRIBUTES:
        _refuse(f"access to attribute '{name}' is not allowed")
    if obj is _safe_str or obj is _bounded_range:
        obj = _TYPE_STAND_INS[obj]  # so 'str.maketrans' means the type's method
    if isinstance(obj, type):
        if obj not in _ATTRIBUTE_CLASSES or name not in _CLASS_ATTRIBUTES:
            _refuse(f"access to '{obj.__name__}.{name}' is not allowed")
    elif isinstance(obj, BaseException):
        if name != "args":
            _refuse(f"access to attribute '{name}' of an exception is not allowed")
    elif type(obj) not in _ATTRIBUTE_TYPES:
        _refuse(f"access to attribute '{name}' of {type(obj).__name__} objects is not "
                "allowed")
    value = getattr(obj, name) if default is _MISSING else getattr(obj, name, default)
    if name in _GROWING_METHODS and isinstance(obj, (str, list)):
        return _grow_guard(obj, name, value)
    return value


def _bounded_range(*args):
    result = range(*args)
    try:
        length = len(result)
    except OverflowError:
        length = sys.maxsize
    _check_length(length, "range()")
    return result


def _safe_sum(iterable, start=0):
    # A list or tuple start turns sum() into repeated concatenation inside C.
    if type(start) not in (int, float, bool, timedelta):
        _refuse("sum() only adds numbers and timedeltas")
    return sum(iterable, start)


def _safe_str(*args, **kwargs):
    if len(args) == 1 and not kwargs:
        _check_text(args[0], "str()")
    return str(*args, **kwargs)


def _text_guard(value):
    _check_text(value, "an f-string")
    return value


# Offered callables that stand in for a type; isinstance() must still see the type.
_TYPE_STAND_INS = {_safe_str: str, _bounded_range: range}


def _safe_isinstance(obj, classes):
    if isinstance(classes, tuple):
        classes = tuple(_TYPE_STAND_INS.get(c, c) for c in classes)
    else:
        classes = _TYPE_STAND_INS.get(classes, classes)
    return isinstance(obj, classes)


class _ScriptPrint:
    """What ``print`` is inside a script: scripts have no console, output goes to the log."""

    def __init__(self, _getattr_=None):
        self.lines = []

    def _call_print(self, *objects, sep=" ", end="\n", **_ignored):
        for value in objects:
            _check_text(value, "print()")
        text = str(sep).join(str(value) for value in objects)
        self.lines.append(text + str(end))
        logger.info("script print: %s", text[:2000])

    def __call__(self):
        return "".join(self.lines)


_BUILTINS = {
    "None": None, "True": True, "False": False,
    "abs": abs, "all": all, "any": any, "bool": bool, "dict": dict, "divmod": divmod,
    "enumerate": enumerate, "filter": filter, "float": float, "getattr": guarded_getattr,
    "int": int, "isinstance": _safe_isinstance, "len": len, "list": list, "map": map,
    "max": max, "min": min, "range": _bounded_range, "reversed": reversed, "round": round,
    "set": set, "sorted": sorted, "str": _safe_str, "sum": _safe_sum, "tuple": tuple,
    "zip": zip,
    "datetime": datetime, "timedelta": timedelta,
    "ArithmeticError": ArithmeticError, "Exception": Exception, "IndexError": IndexError,
    "KeyError": KeyError, "LookupError": LookupError, "TypeError": TypeError,
    "ValueError": ValueError, "ZeroDivisionError": ZeroDivisionError,
}

#: Every builtin name scripts and expressions can use.
SAFE_BUILTINS = frozenset(_BUILTINS)

_PYTHON_BUILTIN_NAMES = frozenset(dir(builtins))

# The helpers RestrictedPython's output and SandboxTransformer's rewrites call.
_GUARDS = {
    "_getattr_": guarded_getattr,
    "_getitem_": _guarded_getitem,
    "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": _guarded_write,
    "_inplacevar_": _guarded_inplace,
    "_apply_": _apply,
    "_print_": _ScriptPrint,
    "_add_": _guarded_add,
    "_mul_": _guarded_mul,
    "_pow_": _guarded_pow,
    "_lshift_": _guarded_lshift,
    "_mod_": _guarded_mod,
    "_text_guard_": _text_guard,
    "_tick_": _tick,
    "_handler_guard_": _handler_guard,
}


# -- task data --------------------------------------------------------------------------

_STORABLE_SCALARS = frozenset({str, float, bool, type(None), datetime, timedelta, uuid.UUID})


def _unstorable(value):
    """Describe the first part of ``value`` spiff's serializer cannot store, else None."""
    pending = [value]
    visited = 0
    while pending:
        item = pending.pop()
        visited += 1
        if visited > MAX_SEQUENCE_LENGTH:
            return f"more than {MAX_SEQUENCE_LENGTH} nested values (or a self-reference)"
        kind = type(item)
        if kind in _STORABLE_SCALARS:
            continue
        if kind is int:
            if item.bit_length() > MAX_INT_BITS:
                return f"an integer over {MAX_INT_BITS} bits"
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif kind is dict:
            for key in item:
                if type(key) is not str:
                    return f"a dict key of type {type(key).__name__} (keys must be strings)"
            pending.extend(item.values())
        else:
            return f"a {kind.__name__} value"
    return None


def _sandbox_line(err):
    """The sandbox source line the traceback of ``err`` passed through last, else None."""
    line = None
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.filename == SANDBOX_FILENAME:
            line = frame.lineno
    return line


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """A SpiffWorkflow script environment that runs everything in the sandbox.

    Expressions and scripts are compiled by :func:`compile_expression` /
    :func:`compile_script` (RestrictedPython plus :class:`SandboxTransformer`, LRU-cached
    by source text) and run with task data as globals, :data:`SAFE_BUILTINS`, the guards
    and ``functions``. Each evaluation must finish within ``time_limit`` seconds of wall
    clock (nested evaluations share the outer deadline) or raises
    :class:`ScriptTimeout`. Task data keys equal to a function name raise
    :class:`SandboxViolation` naming the key. ``services`` are what service tasks call
    (see :meth:`call_service`).
    """

    def __init__(self, functions=None, services=None, time_limit=DEFAULT_TIME_LIMIT):
        functions = dict(functions or {})
        for name, func in functions.items():
            if (not isinstance(name, str) or not name.isidentifier()
                    or keyword.iskeyword(name) or name.startswith("_")):
                raise ValueError(f"{name!r} cannot be a script function name")
            if not callable(func):
                raise ValueError(f"script function {name!r} is not callable")
        if not time_limit > 0:
            raise ValueError("time_limit must be positive")
        super().__init__(functions)
        self.services = dict(services or {})
        self.time_limit = float(time_limit)
        self._function_names = frozenset(functions)
        self._reserved = {"__builtins__": dict(_BUILTINS), **_GUARDS, **functions}

    def evaluate(self, expression, context, external_context=None):
        """Return the value of ``expression`` over ``context`` (task data).

        ``external_context`` (spiff passes data objects, DMN its input value) is visible
        under task data. Raises SyntaxError, SandboxViolation, ScriptTimeout or whatever
        the expression itself raised.
        """
        code = compile_expression(expression)
        self._check_shadowing(context)
        namespace = dict(external_context) if external_context else {}
        namespace.update(context)
        namespace.update(self._reserved)
        return self._run(code, namespace)

    def execute(self, script, context, external_context=None):
        """Run ``script`` and store the names it binds (or deletes) in ``context``.

        Nothing is stored if the script fails or leaves a value spiff cannot serialize;
        returns True like spiff's own environment.
        """
        code = compile_script(script)
        self._check_shadowing(context)
        external = external_context or {}
        clashes = sorted(key for key in external if key in context)
        if clashes:
            raise SandboxViolation(f"task data key(s) {', '.join(map(repr, clashes))} clash "
                                   "with data object(s) of the same name")
        namespace = dict(context)
        namespace.update(external)
        namespace.update(self._reserved)
        self._run(code, namespace)
        self._store(context, namespace, external)
        return True

    def call_service(self, context, operation_name=None, operation_params=None, **kwargs):
        """Call ``services[operation_name](**params, task_data=copy of context)``.

        ``operation_params`` is spiff's ``{name: {'value': evaluated, 'type': ...}}``.
        The service gets a shallow copy of task data so it cannot add or drop keys; what
        it returns is handed back JSON-encoded, as spiff's ServiceTask expects, and lands
        in the task's result variable. Raises :class:`UnknownService` naming an unknown
        operation and TypeError for a result JSON cannot encode.
        """
        service = self.services.get(operation_name)
        if service is None:
            known = ", ".join(sorted(self.services)) or "none"
            raise UnknownService(f"unknown service '{operation_name}' (offered: {known})")
        params = {name: spec["value"] for name, spec in (operation_params or {}).items()}
        if "task_data" in params:
            raise SandboxViolation(f"service '{operation_name}' has a parameter named "
                                   "'task_data', which is reserved for the task data")
        result = service(**params, task_data=dict(context))
        try:
            return json.dumps(result)
        except (TypeError, ValueError) as err:
            raise TypeError(f"service '{operation_name}' returned a value JSON cannot "
                            f"encode: {err}") from err

    def _check_shadowing(self, context):
        clashes = sorted(name for name in self._function_names if name in context)
        if clashes:
            names = ", ".join(map(repr, clashes))
            raise SandboxViolation(f"task data key(s) {names} shadow the script function(s) "
                                   "of the same name; rename the form field or variable")

    def _run(self, code, namespace):
        outer_deadline = getattr(_state, "deadline", None)
        outer_limit = getattr(_state, "limit", None)
        deadline = time.monotonic() + self.time_limit
        if outer_deadline is not None and outer_deadline < deadline:
            deadline = outer_deadline
        else:
            _state.limit = self.time_limit
        _state.deadline = deadline
        previous_trace = sys.gettrace()
        sys.settrace(_make_tracer(deadline))
        try:
            return eval(code, namespace)  # restricted code in a guarded namespace
        except NameError as err:
            name = getattr(err, "name", None)
            if name in _PYTHON_BUILTIN_NAMES and name not in SAFE_BUILTINS:
                logger.warning("sandbox refused: builtin %r is not available", name)
                raise SandboxViolation(f"'{name}' is not available in scripts",
                                       line_number=_sandbox_line(err)) from err
            raise
        except SandboxViolation as err:
            if err.line_number is None:
                err.line_number = _sandbox_line(err)
            raise
        except ScriptTimeout as err:
            logger.warning("sandbox stopped a script at line %s: %s", _sandbox_line(err), err)
            raise
        finally:
            sys.settrace(previous_trace)
            _state.deadline = outer_deadline
            _state.limit = outer_limit

    def _store(self, context, namespace, external):
        for name in self._function_names:
            if namespace.get(name) is not self._reserved[name]:
                raise SandboxViolation(f"the script assigns to '{name}', the name of a "
                                       "script function; choose another variable name")
        removed = [key for key in context if key not in namespace]
        changed = {}
        for key, value in namespace.items():
            if key in self._reserved or key in external:
                continue
            old = context.get(key, _MISSING)
            if value is old:
                continue
            if old is _MISSING and key.startswith("_"):
                continue  # temporaries of SandboxTransformer's rewrites
            if callable(value):
                # Helpers the script defined; spiff drops them too.
                if old is not _MISSING:
                    removed.append(key)
                continue
            problem = _unstorable(value)
            if problem is not None:
                raise SandboxViolation(
                    f"the script left task data key '{key}' holding {problem}; task data "
                    "must stay JSON-serializable (str, int, float, bool, None, list, dict "
                    "with string keys, datetime, timedelta, UUID)")
            changed[key] = value
        for key in removed:
            context.pop(key, None)
        context.update(changed)


# -- the engine -------------------------------------------------------------------------

def _task_error(message, task, err, **location):
    error = WorkflowTaskException(message, task=task, exception=err, **location)
    # Spiff keeps only the error's class name; the host wants the error itself.
    error.exception = err
    return error


class SandboxScriptEngine(PythonScriptEngine):
    """PythonScriptEngine over a :class:`SandboxEnvironment`, with readable errors.

    Every failure reaches ``do_engine_steps()`` as a ``WorkflowTaskException`` whose
    message names the error class and text (``SandboxViolation: ...``,
    ``ScriptTimeout: ...``; expressions prefix ``Error evaluating expression '...'``),
    whose ``exception`` attribute and ``__cause__`` are the original error, and whose
    ``line_number``/``error_line`` point into the script when known.
    """

    def __init__(self, environment):
        super().__init__(environment=environment)

    def validate(self, expression):
        """Compile ``expression`` for the sandbox; raise SyntaxError or SandboxViolation."""
        compile_expression(expression)

    def validate_script(self, script):
        """Compile ``script`` for the sandbox; raise SyntaxError or SandboxViolation."""
        compile_script(script)

    def evaluate(self, task, expression, external_context=None):
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SpiffWorkflowException as err:
            err.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as err:
            raise _task_error(
                f"Error evaluating expression '{expression}': {type(err).__name__}: {err}",
                task, err) from err

    def execute(self, task, script, external_context=None):
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except Exception as err:
            raise self.create_task_exec_exception(task, script, err) from err

    def call_service(self, task, **kwargs):
        # Spiff's own version refers to an undefined name when the service fails.
        try:
            return self.environment.call_service(task.data, **kwargs)
        except SpiffWorkflowException:
            raise
        except Exception as err:
            name = kwargs.get("operation_name")
            raise _task_error(f"Service '{name}' failed: {type(err).__name__}: {err}",
                              task, err) from err

    def create_task_exec_exception(self, task, script, err):
        line_number, error_line = self.get_error_line_number_and_content(script, err)
        if isinstance(err, SpiffWorkflowException):
            err.line_number = line_number
            err.error_line = error_line
            err.add_note(f"Python script error on line {line_number}: '{error_line}'")
            return err
        # str(err), unlike spiff's err.args[0], works for every exception.
        return _task_error(f"{type(err).__name__}: {err}", task, err,
                           line_number=line_number, error_line=error_line)

    def get_error_line_number_and_content(self, script, err):
        if isinstance(err, SyntaxError):
            line_number = err.lineno or 0
        else:
            line_number = getattr(err, "line_number", None) or _sandbox_line(err) or 0
        lines = script.splitlines()
        error_line = lines[line_number - 1] if 0 < line_number <= len(lines) else ""
        return line_number, error_line


def make_script_engine(functions, services, time_limit=DEFAULT_TIME_LIMIT):
    """A SpiffWorkflow script engine that runs diagram Python in the sandbox.

    ``functions`` (name -> callable) are callable by name from scripts, conditions,
    timer and DMN expressions; ``services`` (name -> callable) are what spiff service
    tasks call: ``services[operator](**evaluated_params, task_data=copy_of_task_data)``,
    with the JSON-encodable result stored in the task's result variable. Nothing else is
    passed: callables that need the running task read it from the host's contextvars.
    Each evaluation may take ``time_limit`` seconds of wall clock.
    """
    return SandboxScriptEngine(SandboxEnvironment(functions, services, time_limit))
