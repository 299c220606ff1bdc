"""Validation's dry run of BPMN code: the parts that depend on literals only run at deploy time.

The checker in `engine.core.sandbox` refuses what code may not *do*; whether
it stays within the resource limits is known only by running it. Much of a
hostile script needs no task data at all (`x = 'a' * (10 ** 10)`,
`for i in range(10 ** 9): ...`, `y = [[0] * 1000] * 1000000`), so
`constant_refusals` runs, through the same guards, budget and time limit as
at run time:

* in a script, each top-level statement in order, in a namespace holding
  only the names earlier statements set from literals; a statement that reads
  task data or calls an approved function (NameError: both are absent) drops
  the names it touches, and what it assigns is checked as it would be stored;
* in every statement or expression that could not run whole, each maximal
  sub-expression whose inputs are all literals (and safe builtins).

Only a resource limit is a verdict: any other error may belong to a branch
that never runs, or to a guess about which names a comprehension binds.
"""
from __future__ import annotations

import ast

from engine.core.sandbox import SandboxEnvironment, _guarded, _normalise, check_source
from engine.core.sandbox_data import check_stored_size
from engine.core.sandbox_guards import _BUILTIN_FUNCTIONS, SandboxLimitExceeded

_TRIVIAL = (ast.Constant, ast.Name, ast.Starred, ast.Slice)


def constant_refusals(source: str, mode: str) -> list[str]:
    """Why the literal-only parts of `source` exceed the sandbox's limits ("line N: reason"); [] if they don't.

    `source` must already pass `check_source`; a refused source answers [].
    """
    if check_source(source, mode, _names_called(source, mode)):
        return []
    tree = ast.parse(_normalise(source, mode), mode=mode)
    env = SandboxEnvironment()
    with _guarded(source):
        try:
            if mode == "eval":
                _run_expression(env, tree.body)
            else:
                _run_script(env, tree.body)
        except SandboxLimitExceeded as err:
            return [f"line {getattr(err, 'line', 1)}: {'; '.join(err.reasons)} (found running the parts "
                    f"that depend on literals only)"]
    return []


def _names_called(source: str, mode: str) -> set[str]:
    try:
        tree = ast.parse(_normalise(source, mode), mode=mode)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return set()
    return {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def _at(line: int, err: SandboxLimitExceeded) -> SandboxLimitExceeded:
    if not hasattr(err, "line"):
        err.line = line
    return err


def _run_expression(env: SandboxEnvironment, node: ast.expr) -> None:
    if not _free_names(node, {}):
        try:
            code = env.compile(ast.unparse(node), "eval")
            check_stored_size(eval(code, env._namespace({}, {})), "the result")
        except SandboxLimitExceeded as err:
            raise _at(node.lineno, err) from None
        except Exception:  # noqa: BLE001 - not a verdict (see the module docstring)
            pass
        return
    _run_parts(env, node)


def _run_script(env: SandboxEnvironment, body: list[ast.stmt]) -> None:
    namespace = env._namespace({}, {})
    for stmt in body:
        try:
            exec(env.compile(ast.unparse(stmt), "exec"), namespace)
            for name in _assigned(stmt):
                if name in namespace:
                    check_stored_size(namespace[name], f"variable {name!r}")
        except SandboxLimitExceeded as err:
            raise _at(stmt.lineno, err) from None
        except Exception:  # noqa: BLE001 - it read task data or failed on a guess: not a verdict
            for name in _touched(stmt):
                namespace.pop(name, None)
            _run_parts(env, stmt)


def _run_parts(env: SandboxEnvironment, root: ast.AST) -> None:
    """Evaluate each maximal literal-only sub-expression under `root` (not `root` itself)."""
    memo: dict[int, frozenset[str]] = {}
    _free_names(root, memo)
    todo = list(ast.iter_child_nodes(root))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.expr) and not isinstance(node, _TRIVIAL) and not memo[id(node)] \
                and isinstance(getattr(node, "ctx", ast.Load()), ast.Load):
            try:
                eval(env.compile(ast.unparse(node), "eval"), env._namespace({}, {}))
            except SandboxLimitExceeded as err:
                raise _at(node.lineno, err) from None
            except Exception:  # noqa: BLE001 - not a verdict
                pass
            continue
        todo.extend(ast.iter_child_nodes(node))


def _free_names(node: ast.AST, memo: dict[int, frozenset[str]]) -> frozenset[str]:
    """Names `node` reads that it does not bind itself (safe builtins excepted), for every node in `memo`."""
    if isinstance(node, ast.Name):
        free = frozenset() if isinstance(node.ctx, ast.Store) or node.id in _BUILTIN_FUNCTIONS else {node.id}
        memo[id(node)] = frozenset(free)
        return memo[id(node)]
    free: set[str] = set()
    for child in ast.iter_child_nodes(node):
        free |= _free_names(child, memo)
    free -= _bound(node)
    memo[id(node)] = frozenset(free)
    return memo[id(node)]


def _bound(node: ast.AST) -> set[str]:
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return {n.id for gen in node.generators for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
    return set()


def _assigned(stmt: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _touched(stmt: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
