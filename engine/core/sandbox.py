"""The sandbox for the Python carried by BPMN files: checker, guards and script engine.

BPMN files are untrusted input, yet SpiffWorkflow evaluates their gateway
conditions, timer expressions and service parameters, and runs their script
tasks, with plain `eval`/`exec` and full builtins. Taking the builtins away is
not enough (`().__class__.__base__.__subclasses__()` still reaches `os`), so
this module holds:

* `check_source`: a whitelist over the syntax tree. Only literals, names,
  operators, displays, comprehensions, f-strings, calls of approved functions
  and of a few methods of plain data, and in scripts assignments, `if` and
  `for`. No imports, definitions, lambdas, `while`, `try`/`raise`/`with`, and
  no name, attribute or keyword that starts with `_`. Definitions run it when
  a file is deployed; the environment runs it again before every evaluation.
* guards: the accepted tree is rewritten so that arithmetic, formatting,
  method calls, slices, loops, comparisons and hashed keys go through the
  helpers of `engine.core.sandbox_guards`, which refuse huge results
  (ints over `MAX_INT_BITS`, sequences over `MAX_SEQUENCE_LENGTH`) and stop
  runaway code (the operation budget and time limit of
  `engine.core.sandbox_limits`, one per evaluation).
* `SandboxEnvironment` and `SandboxScriptEngine`: SpiffWorkflow's script
  engine wired to the above. Code sees only `SAFE_BUILTINS`, the approved
  functions and a copy of the task data; a script's results reach the task
  data only if they are plain data that can be stored (`engine.core.
  sandbox_data`: measured as stored, each container once). Copying in,
  running and copying back share the one budget and time limit.

Limiting memory from inside Python is approximate: the budget counts the sizes
of the values that guarded operations create, which bounds what a script can
build, not what it holds at one moment.
"""
from __future__ import annotations

import ast
import functools
import textwrap
from collections.abc import Callable, Iterable
from types import CodeType

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine.core.sandbox_guards import (  # noqa: F401  (re-exported)
    _BUDGET,
    _BUILTIN_FUNCTIONS,
    _HELPERS,
    CACHE_SIZE,
    DATA_ATTRIBUTES,
    MAX_DATA_DEPTH,
    MAX_INT_BITS,
    MAX_SEQUENCE_LENGTH,
    MAX_SOURCE_LENGTH,
    MODES,
    MUTATING_METHODS,
    OPERATION_BUDGET,
    SAFE_BUILTINS,
    SAFE_METHODS,
    MAX_STORED_SIZE,
    TIME_LIMIT_SECONDS,
    SandboxLimitExceeded,
    SandboxViolation,
    _Budget,
    _is_int,
    _repr_fits,
)
from engine.core.sandbox_data import check_stored_size, stored_copy

# -- the checker ---------------------------------------------------------------------------

_OPERATORS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^",
}
_EXPRESSION_NODES = frozenset({
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Store, ast.Attribute, ast.Subscript, ast.Slice,
    ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.UnaryOp, ast.UAdd, ast.USub, ast.Not, ast.Invert,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
    ast.IfExp, ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp,
    ast.GeneratorExp, ast.comprehension, ast.JoinedStr, ast.FormattedValue, ast.Call, ast.keyword,
    ast.Starred, *_OPERATORS,
})
_SCRIPT_NODES = _EXPRESSION_NODES | {
    ast.Module, ast.Assign, ast.AugAssign, ast.If, ast.For, ast.Pass, ast.Expr, ast.Break, ast.Continue,
}
_CONSTRUCTS = {
    ast.Import: "import", ast.ImportFrom: "import", ast.FunctionDef: "def", ast.AsyncFunctionDef: "async def",
    ast.ClassDef: "class", ast.Lambda: "lambda", ast.While: "while", ast.With: "with",
    ast.AsyncWith: "async with", ast.AsyncFor: "async for", ast.Try: "try", ast.Raise: "raise",
    ast.Assert: "assert", ast.Global: "global", ast.Nonlocal: "nonlocal", ast.Delete: "del",
    ast.Return: "return", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Await: "await",
    ast.NamedExpr: "the walrus operator (:=)", ast.AnnAssign: "annotated assignment",
    ast.MatMult: "the @ operator", ast.Match: "match", getattr(ast, "TryStar", ast.Try): "try",
}
# Parts of refused constructs; the construct itself is reported, not its parts.
_PARTS = (ast.arguments, ast.arg, ast.alias, ast.excepthandler, ast.withitem, ast.match_case,
          ast.pattern, ast.type_ignore, ast.Del)


class _Checker:
    def __init__(self, mode: str, callables: frozenset[str]):
        self.allowed = _EXPRESSION_NODES if mode == "eval" else _SCRIPT_NODES
        self.mode = mode
        self.callables = callables
        self.callees: set[int] = set()
        self.reasons: list[str] = []

    def refuse(self, line: int, reason: str) -> None:
        text = f"line {line}: {reason}"
        if text not in self.reasons:
            self.reasons.append(text)

    def walk(self, node: ast.AST, line: int) -> None:
        line = getattr(node, "lineno", line)
        self.inspect(node, line)
        for child in ast.iter_child_nodes(node):
            self.walk(child, line)

    def inspect(self, node: ast.AST, line: int) -> None:
        kind = type(node)
        if kind not in self.allowed:
            if not isinstance(node, _PARTS):
                self.refuse(line, f"{_CONSTRUCTS.get(kind, kind.__name__)} is not allowed")
            return
        if kind is ast.Name:
            if node.id.startswith("_"):
                self.refuse(line, f"name '{node.id}' starts with an underscore")
            elif isinstance(node.ctx, ast.Store) and node.id in self.callables:
                self.refuse(line, f"assigning to function name '{node.id}' is not allowed")
        elif kind is ast.Attribute:
            self.inspect_attribute(node, line)
        elif kind is ast.keyword and node.arg and node.arg.startswith("_"):
            self.refuse(line, f"keyword argument '{node.arg}' starts with an underscore")
        elif kind is ast.Call:
            self.callees.add(id(node.func))
            func = node.func
            if isinstance(func, ast.Name):
                if not func.id.startswith("_") and func.id not in self.callables:
                    self.refuse(line, f"call to unknown function '{func.id}'")
            elif not isinstance(func, ast.Attribute):
                self.refuse(line, "only named functions and methods can be called")
        elif kind is ast.comprehension and node.is_async:
            self.refuse(line, "async comprehension is not allowed")
        elif kind is ast.Constant and _is_int(node.value) and node.value.bit_length() > MAX_INT_BITS:
            self.refuse(line, f"integer literal over {MAX_INT_BITS} bits")

    def inspect_attribute(self, node: ast.Attribute, line: int) -> None:
        attr = node.attr
        if attr.startswith("_"):
            self.refuse(line, f"attribute '{attr}' starts with an underscore")
        elif not isinstance(node.ctx, ast.Load):
            self.refuse(line, f"assigning to attribute '{attr}' is not allowed")
        elif id(node) in self.callees:
            if attr not in SAFE_METHODS:
                self.refuse(line, f"call to method '{attr}' is not allowed")
            elif self.mode == "eval" and attr in MUTATING_METHODS:
                self.refuse(line, f"method '{attr}' changes data and is not allowed in an expression")
        elif attr not in DATA_ATTRIBUTES:
            self.refuse(line, f"attribute '{attr}' is not allowed")


# -- the rewrite -------------------------------------------------------------------------

def _call(at: ast.AST, helper: str, *args: ast.expr, keywords=()) -> ast.Call:
    node = ast.Call(func=ast.Name(id=helper, ctx=ast.Load()), args=list(args), keywords=list(keywords))
    return ast.copy_location(node, at)


def _const(value) -> ast.Constant:
    return ast.Constant(value=value)


class _Guards(ast.NodeTransformer):
    """Route the operations that can build huge values or loop for long through the guards."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return _call(node, "_sb_binop", _const(_OPERATORS[type(node.op)]), node.left, node.right)

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        op, target = _const(_OPERATORS[type(node.op)]), node.target
        if isinstance(target, ast.Name):
            value = _call(node, "_sb_inplace", op, ast.Name(id=target.id, ctx=ast.Load()), node.value)
            return ast.copy_location(ast.Assign(targets=[target], value=value), node)
        key = target.slice
        if isinstance(key, ast.Slice):
            key = _call(key, "_sb_slice", *(part or _const(None) for part in (key.lower, key.upper, key.step)))
        return ast.copy_location(ast.Expr(_call(node, "_sb_augitem", op, target.value, key, node.value)), node)

    def visit_For(self, node):
        self.generic_visit(node)
        node.iter = _call(node.iter, "_sb_iter", node.iter)
        return node

    def visit_comprehension(self, node):
        self.generic_visit(node)
        node.iter = _call(node.iter, "_sb_iter", node.iter)
        return node

    def visit_Compare(self, node):
        # Comparing and hashing follow shared references again and again: charge what they visit.
        self.generic_visit(node)
        if not all(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops):
            node.left = _call(node.left, "_sb_scan", node.left)
            node.comparators = [_call(right, "_sb_scan", right) for right in node.comparators]
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute):
            func = node.func
            return _call(node, "_sb_method", func.value, _const(func.attr), *node.args, keywords=node.keywords)
        return node

    def visit_FormattedValue(self, node):
        self.generic_visit(node)
        spec = node.format_spec or _const(None)
        value = _call(node, "_sb_format", node.value, _const(node.conversion), spec)
        return ast.copy_location(ast.FormattedValue(value=value, conversion=-1, format_spec=None), node)

    def _sized_if(self, node, condition: bool):
        self.generic_visit(node)
        return _call(node, "_sb_sized", node) if condition else node

    def visit_List(self, node):
        return self._sized_if(node, isinstance(node.ctx, ast.Load) and _has_starred(node.elts))

    visit_Tuple = visit_List

    def visit_Set(self, node):
        node.elts = [_scanned(element) for element in node.elts]
        return self._sized_if(node, _has_starred(node.elts))

    def visit_Dict(self, node):
        node.keys = [key if key is None else _scanned(key) for key in node.keys]
        return self._sized_if(node, None in node.keys)

    def visit_SetComp(self, node):
        self.generic_visit(node)
        node.elt = _scanned(node.elt)
        return node

    def visit_DictComp(self, node):
        self.generic_visit(node)
        node.key = _scanned(node.key)
        return node

    def visit_Subscript(self, node):
        if not isinstance(node.slice, ast.Slice):
            node.slice = _scanned(node.slice)  # a dict key is hashed
        return self._sized_if(node, isinstance(node.ctx, ast.Load) and isinstance(node.slice, ast.Slice))


def _scanned(node):
    if isinstance(node, ast.Starred):  # {*items}: each item is hashed
        return ast.copy_location(ast.Starred(value=_call(node, "_sb_scan", node.value), ctx=node.ctx), node)
    return node if isinstance(node, ast.Constant) else _call(node, "_sb_scan", node)


def _has_starred(elements) -> bool:
    return any(isinstance(element, ast.Starred) for element in elements)


def _normalise(source: str, mode: str) -> str:
    return source.strip() if mode == "eval" else textwrap.dedent(source)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _prepare(source: str, mode: str, functions: frozenset[str]) -> tuple[CodeType | None, tuple[str, ...]]:
    """Check and compile one source; the result is cached, refusals included."""
    if len(source) > MAX_SOURCE_LENGTH:
        return None, (f"line 1: source is longer than {MAX_SOURCE_LENGTH:,} characters",)
    try:
        tree = ast.parse(_normalise(source, mode), mode=mode)
    except SyntaxError as err:
        return None, (f"line {err.lineno or 1}: syntax error: {err.msg}",)
    except ValueError as err:  # null bytes
        return None, (f"line 1: cannot be parsed: {err}",)
    except (MemoryError, RecursionError):
        return None, ("line 1: source is too deeply nested to parse",)
    checker = _Checker(mode, functions | _BUILTIN_FUNCTIONS)
    try:
        checker.walk(tree, 1)
        if checker.reasons:
            return None, tuple(checker.reasons)
        tree = ast.fix_missing_locations(_Guards().visit(tree))
        return compile(tree, "<string>", mode), ()
    except SyntaxError as err:  # found by the compiler, not the parser: `break` outside a loop
        return None, (f"line {err.lineno or 1}: syntax error: {err.msg}",)
    except (MemoryError, RecursionError):
        return None, ("line 1: source is too deeply nested to compile",)


def check_source(source: str, mode: str, allowed_functions: Iterable[str]) -> list[str]:
    """Why `source` is refused in `mode` ("eval" or "exec"); an empty list means accepted."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, not {type(source).__name__}")
    return list(_prepare(source, mode, frozenset(allowed_functions))[1])


# -- errors ------------------------------------------------------------------------------

def _shrink_message(err: BaseException) -> None:
    """An error whose message would be huge (a KeyError on a huge key) gets a short one."""
    if not all(_repr_fits(arg, 10_000) for arg in err.args):
        err.args = (f"{type(err).__name__} (message too large to show)",)


# -- SpiffWorkflow integration -----------------------------------------------------------------

class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluates expressions and runs scripts with only safe builtins, approved functions and task data."""

    def __init__(self, functions: dict[str, Callable] | None = None, service_caller: Callable | None = None):
        functions = dict(functions or {})
        for name, function in functions.items():
            if not name.isidentifier() or name.startswith("_") or not callable(function):
                raise ValueError(f"sandbox function {name!r} needs a public identifier and a callable")
        super().__init__(functions)
        self.functions = functions
        self.service_caller = service_caller
        self._names = frozenset(functions)

    def compile(self, source: str, mode: str) -> CodeType:
        """The guarded code for `source`, or SandboxViolation."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        code, reasons = _prepare(source, mode, self._names)
        if reasons:
            raise SandboxViolation(source, reasons)
        return code

    def evaluate(self, expression, context, external_context=None):
        # Expressions cannot assign or call mutating methods, so a shallow namespace is enough.
        namespace = self._namespace(context, external_context)
        code = self.compile(expression, "eval")
        with _guarded(expression):
            result = eval(code, namespace)
            # A result may become task data (a decision's output): bounded as stored.
            check_stored_size(result, "the result")
            return result

    def execute(self, script, context, external_context=None):
        external_context = external_context or {}
        self.check_for_overwrite(context, external_context)
        code = self.compile(script, "exec")
        # The copy in, the run and the copy back share one budget and one time limit.
        with _guarded(script):
            copied = {k: stored_copy(v, f"task data {k!r}")[0] for k, v in context.items()}
            namespace = self._namespace(copied, external_context)
            exec(code, namespace)
            results = {}
            for name, value in namespace.items():
                if name in _HELPERS or name in self.functions or name in external_context or name == "__builtins__":
                    continue
                value, plain = stored_copy(value, f"variable {name!r}")
                if plain:
                    results[name] = value
            check_stored_size(results, "the data the script leaves")
        context.update(results)
        return True

    def call_service(self, context, operation_name=None, operation_params=None, **kwargs):
        if self.service_caller is None:
            raise RuntimeError(f"no service caller is configured (operation {operation_name!r})")
        return self.service_caller(operation_name, operation_params, context)

    def check_for_overwrite(self, context, external_context) -> None:
        clashes = (set(self.functions) | set(external_context)) & set(context)
        if clashes:
            raise ValueError(f"You have task data that overwrites a predefined function(s). Please change "
                             f"the following variable or field name(s) to something else: {sorted(clashes)}")

    def _namespace(self, context, external_context) -> dict:
        namespace = dict(external_context or {})
        namespace.update(context)
        namespace.update(self.functions)
        namespace.update(_HELPERS)
        namespace["__builtins__"] = SAFE_BUILTINS
        return namespace



class _guarded:  # noqa: N801 - used as a context manager, like a function
    """One budget and one time limit for all the work done on `source`; errors that name it."""

    __slots__ = ("source", "token")

    def __init__(self, source: str):
        self.source = source

    def __enter__(self):
        self.token = _BUDGET.set(_Budget())

    def __exit__(self, kind, err, _tb):
        _BUDGET.reset(self.token)
        if isinstance(err, SandboxViolation):
            if err.source is None:
                err.source = self.source
        elif isinstance(err, Exception):
            _shrink_message(err)
        return False


class SandboxScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's script engine on a SandboxEnvironment, with service errors that keep their cause."""

    def __init__(self, environment: SandboxEnvironment | None = None):
        environment = environment if environment is not None else SandboxEnvironment()
        if not isinstance(environment, SandboxEnvironment):
            raise TypeError("SandboxScriptEngine needs a SandboxEnvironment")
        super().__init__(environment)

    def evaluate(self, task, expression, external_context=None):
        # As the base class, but the message says why (the sandbox's reasons) and keeps the cause.
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SpiffWorkflowException as err:
            err.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as err:
            raise WorkflowTaskException(f"Error evaluating expression '{expression}': {err}",
                                        task=task, exception=err) from err

    def validate(self, expression):
        # A plain SyntaxError first, as the base class raises: the DMN engine relies on it.
        ast.parse(_normalise(expression, "eval"), mode="eval")
        reasons = check_source(expression, "eval", self.environment.functions)
        if reasons:
            raise SandboxViolation(expression, reasons)

    def call_service(self, task, **kwargs):
        # The base class refers to an undefined `script` here, turning every error into a NameError.
        try:
            return self.environment.call_service(task.data, **kwargs)
        except Exception as err:
            raise WorkflowTaskException(f"service task {task.task_spec.bpmn_id} failed: {err}",
                                        task=task, exception=err) from err

    def create_task_exec_exception(self, task, script, err):
        # The base class concatenates err.args[0] to a str, so `{}[5]` would raise a TypeError.
        if isinstance(err, SpiffWorkflowException) or not err.args or isinstance(err.args[0], str):
            return super().create_task_exec_exception(task, script, err)
        line_number, error_line = self.get_error_line_number_and_content(script, err)
        return WorkflowTaskException(f"{err.__class__.__name__}:{err}", task=task, exception=err,
                                     line_number=line_number, error_line=error_line)


def make_script_engine(functions: dict[str, Callable] | None = None,
                       service_caller: Callable | None = None) -> SandboxScriptEngine:
    """The script engine for running untrusted BPMN: approved functions and a service caller only."""
    return SandboxScriptEngine(SandboxEnvironment(functions, service_caller))
