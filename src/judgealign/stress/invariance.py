"""Invariance probes: edits a reviewer would not grade (variable names, code layout, neutral
comments, the order of two independent cells). Any score they move is a false alarm."""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from collections import defaultdict

import numpy as np

from judgealign.stress.code import Edit, bound_names, touched_names
from judgealign.stress.notebook import Notebook
from judgealign.stress.probe import NotApplicable

# Meaning-preserving synonyms for the parts of common variable names (``df_train`` ->
# ``frame_train``). Train/test words stay: they say which data a step reads.
SYNONYMS = {
    "df": "frame", "data": "dataset", "dataset": "data_table", "X": "features", "x": "inputs",
    "y": "target", "model": "estimator", "clf": "classifier", "reg": "regressor",
    "pipe": "pipeline", "pipeline": "workflow", "pred": "predicted", "preds": "predictions",
    "predictions": "predicted_values", "res": "result", "results": "outcomes", "tmp": "temp",
    "cols": "columns", "col": "column", "vars": "variables", "var": "variable",
    "num": "numeric", "cat": "categorical", "feats": "features", "feat": "feature",
    "params": "settings", "param": "setting", "scores": "results", "score": "result",
    "idx": "index", "fig": "figure", "ax": "axis", "axes": "axis_grid", "est": "estimator",
    "imputer": "filler", "scaler": "rescaler", "encoder": "coder", "lr": "learning_rate",
    "n": "count", "vals": "values", "val": "value", "mask": "selector", "grid": "search_space",
}  # fmt: skip
_BUILTINS = frozenset(dir(builtins))


def _renamed(name: str) -> str | None:
    parts = name.split("_")
    mapped = [SYNONYMS.get(p, p) for p in parts]
    return "_".join(mapped) if mapped != parts else None


def _identifiers(nb: Notebook) -> set[str]:
    """Every identifier the code mentions (names, attributes, arguments, keywords, aliases)."""
    out: set[str] = set()
    for i in nb.python_cells():
        tree = nb.code(i).tree
        assert tree is not None
        for node in ast.walk(tree):
            for attr in ("id", "attr", "arg", "name", "asname"):
                value = getattr(node, attr, None)
                if isinstance(value, str):
                    out.add(value)
    return out


def rename_variables(nb: Notebook, rng: np.random.Generator) -> None:
    """Variables renamed to synonyms (``df`` -> ``frame``, ``X_train`` -> ``features_train``)
    consistently in every cell."""
    cells = nb.python_cells()
    taken = _identifiers(nb)
    candidates: set[str] = set()
    blocked: set[str] = set()
    for i in cells:
        code = nb.code(i)
        tree = code.tree
        assert tree is not None
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                blocked |= bound_names(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                blocked.add(node.name)
            elif isinstance(node, ast.Global | ast.Nonlocal):
                blocked |= set(node.names)
            elif isinstance(node, ast.keyword) and node.arg:
                blocked.add(node.arg)  # f(df=...) would need the callee's parameter renamed
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                candidates.add(node.id)
        # Names IPython lines interpolate ($name, {name}) or strings query (@name).
        for n in code.magic_lines:
            blocked |= set(re.findall(r"[A-Za-z_]\w*", code.text.split("\n")[n - 1]))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                blocked |= set(re.findall(r"@([A-Za-z_]\w*)", node.value))
    plan: dict[str, str] = {}
    for old in sorted(candidates - blocked - _BUILTINS):
        new = _renamed(old)
        if new is None:
            continue
        while new in taken or new in plan.values() or keyword.iskeyword(new):
            new += "_"
        plan[old] = new
    edits: dict[int, list[Edit]] = defaultdict(list)
    bad: set[str] = set()
    for i in cells:
        code = nb.code(i)
        assert code.tree is not None
        for node in ast.walk(code.tree):
            name = None
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.arg):
                name = node.arg
            if name not in plan:
                continue
            start, end = code.span(node)
            text = code.text[start:end]
            if isinstance(node, ast.arg):
                end = start + len(name)
                text = code.text[start:end]
            if text != name:
                bad.add(name)  # a position ast got wrong (inside an f-string): leave the name
                continue
            edits[i].append(Edit(start, end, plan[name]))
    for cell in edits:
        edits[cell] = [e for e in edits[cell] if nb.code(cell).text[e.start : e.end] not in bad]
    done = {k: v for k, v in plan.items() if k not in bad}
    if len(done) < 2:
        raise NotApplicable("fewer than 2 variables with a synonym to rename")
    nb.edit(dict(edits))
    shown = ", ".join(f"{k} -> {v}" for k, v in sorted(done.items())[:8])
    nb.note(f"renamed {len(done)} variable(s): {shown}{', ...' if len(done) > 8 else ''}")


def reformat_code(nb: Notebook, rng: np.random.Generator) -> None:
    """Code cells reformatted by black (79 columns): layout changes, code does not."""
    try:
        import black
    except ImportError:  # pragma: no cover - a core dependency
        raise NotApplicable("reformat_code needs black: pip install black") from None
    mode = black.Mode(line_length=79)
    changed = 0
    for i in nb.python_cells():
        code = nb.code(i)
        if code.magic_lines or not code.text.strip():
            continue
        try:
            new = black.format_str(code.text, mode=mode)
        except Exception:
            continue
        if not code.text.endswith("\n"):
            new = new.rstrip("\n")
        if new != code.text:
            nb.set_source(i, new)
            changed += 1
    if changed < 2:
        raise NotApplicable("fewer than 2 code cells change when reformatted")
    nb.note(f"reformatted {changed} code cell(s) with black (79 columns)")


def add_comments(nb: Notebook, rng: np.random.Generator) -> None:
    """A neutral comment line (``# cell 3 of 12``) at the top of each code cell."""
    cells = nb.code_cells()
    edits = {}
    for k, i in enumerate(cells, 1):
        text = nb.source(i)
        if text.lstrip().startswith("%%") or not text.strip():
            continue
        edits[i] = [Edit(0, 0, f"# cell {k} of {len(cells)}\n")]
    if len(edits) < 2:
        raise NotApplicable("fewer than 2 code cells")
    nb.edit(edits)
    nb.note(f"added a neutral comment line to {len(edits)} code cell(s)")


# Modules whose calls change shared state (the current figure): cells using them commute
# only with cells that do not.
_STATEFUL = frozenset({"plt", "sns", "matplotlib", "pylab", "random", "np.random", "torch", "tf"})


def _modules(nb: Notebook) -> set[str]:
    """Names the notebook binds by import."""
    out: set[str] = set()
    for i in nb.python_cells():
        tree = nb.code(i).tree
        assert tree is not None
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                out |= bound_names(node)
    return out


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _footprint(nb: Notebook, i: int, modules: set[str]) -> tuple[set[str], set[str]] | None:
    """(names the cell binds or may change, names it touches); None if it cannot move."""
    code = nb.code(i)
    if not code.ok or code.magic_lines:
        return None
    tree = code.tree
    assert tree is not None
    touched: set[str] = set()
    changes: set[str] = set()
    for stmt in tree.body:
        touched |= touched_names(stmt)
        changes |= bound_names(stmt)
        for node in ast.walk(stmt):
            root = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                root = _root(node.func.value)  # a method call may change its object
            elif isinstance(node, ast.Attribute | ast.Subscript) and isinstance(
                node.ctx, ast.Store
            ):
                root = _root(node.value)
            # Calling a stateless module (pd.read_csv) changes nothing; plt.plot does.
            if root is not None and (root not in modules or root in _STATEFUL):
                changes.add(root)
    return changes, touched


def reorder_independent_cells(nb: Notebook, rng: np.random.Generator) -> None:
    """Up to 3 pairs of adjacent code cells that share no variable swapped (outputs and
    execution counts travel so the counts still increase)."""
    pairs = []
    modules = _modules(nb)
    for i in range(1, len(nb.cells) - 1):
        if nb.kind(i) != "code" or nb.kind(i + 1) != "code" or nb.kind(i - 1) == "markdown":
            continue
        a, b = _footprint(nb, i, modules), _footprint(nb, i + 1, modules)
        if a is None or b is None:
            continue
        if a[0] & b[1] or b[0] & a[1]:
            continue
        pairs.append(i)
    if not pairs:
        raise NotApplicable("no two adjacent code cells are independent")
    chosen: list[int] = []
    for i in (pairs[int(k)] for k in rng.permutation(len(pairs))):
        if all(abs(i - j) > 1 for j in chosen):
            chosen.append(i)
        if len(chosen) == 3:
            break
    order = list(range(len(nb.cells)))
    for i in chosen:
        order[i], order[i + 1] = order[i + 1], order[i]
        first, second = nb.cells[i], nb.cells[i + 1]
        first["execution_count"], second["execution_count"] = (
            second.get("execution_count"),
            first.get("execution_count"),
        )
    nb.reorder(order)
    nb.note(
        f"swapped {len(chosen)} pair(s) of independent cells: "
        + ", ".join(f"{i}<->{i + 1}" for i in sorted(chosen))
    )
