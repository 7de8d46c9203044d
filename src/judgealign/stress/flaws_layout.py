"""Flaws in how the notebook is set up and laid out: MLflow tracking removed, imports and
installs scattered next to first use, installs unpinned, cells shuffled, markdown stripped,
everything in one giant cell."""

from __future__ import annotations

import ast
from collections import defaultdict

import numpy as np

from judgealign.stress.analysis import (
    Facts,
    PipLine,
    model_fits,
    package_name,
    pinned,
    pip_lines,
)
from judgealign.stress.code import Edit, all_statements, bound_names, call_name, used_names
from judgealign.stress.notebook import Notebook
from judgealign.stress.probe import NotApplicable
from judgealign.stress.rewrite import remove_statements

# Where a distribution's import name differs from its package name.
_MODULES = {
    "scikit-learn": "sklearn",
    "sklearn": "sklearn",
    "opencv-python": "cv2",
    "pillow": "PIL",
    "beautifulsoup4": "bs4",
    "pyyaml": "yaml",
    "mlflow-skinny": "mlflow",
    "feature-engine": "feature_engine",
    "tensorflow-cpu": "tensorflow",
}


def module_of(package: str) -> str:
    name = package_name(package).lower()
    return _MODULES.get(name, name.replace("-", "_"))


def _line_edit(nb: Notebook, line: PipLine, text: str | None) -> Edit:
    """Replace (or with ``None`` delete) one install line of its cell."""
    code = nb.code(line.cell)
    start, end = code.line_start(line.lineno), code.line_start(line.lineno + 1)
    if text is None:
        return Edit(start, end, "")
    newline = "\n" if code.text[start:end].endswith("\n") else ""
    return Edit(start, end, text + newline)


def _mlflow_names(facts: Facts) -> set[str]:
    names: set[str] = set()
    for s in facts.statements:
        node = s.node
        if isinstance(node, ast.Import):
            names |= {
                (a.asname or a.name).split(".")[0]
                for a in node.names
                if a.name.startswith("mlflow")
            }
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlflow"):
            names |= {a.asname or a.name for a in node.names}
    return names


def no_mlflow(nb: Notebook, rng: np.random.Generator) -> None:
    """Every MLflow call, import and install removed (``with mlflow.start_run()`` blocks are
    unwrapped: their other code stays)."""
    facts = Facts.of(nb)
    names = _mlflow_names(facts)
    lines = [ln for ln in pip_lines(nb) if any(module_of(p) == "mlflow" for p in ln.packages)]
    if not names and not lines:
        raise NotApplicable("the notebook does not use MLflow")
    targets: list[tuple[int, ast.stmt]] = []
    unwrap: list[tuple[int, ast.stmt]] = []
    for s in facts.statements:
        for inner in all_statements([s.node]):
            if isinstance(inner, ast.Import | ast.ImportFrom):
                if bound_names(inner) and bound_names(inner) <= names:
                    targets.append((s.cell, inner))
            elif isinstance(inner, ast.With | ast.AsyncWith):
                if all(call_name(i.context_expr).split(".")[0] in names for i in inner.items):
                    unwrap.append((s.cell, inner))
            elif isinstance(inner, ast.Expr | ast.Assign) and any(
                isinstance(n, ast.Call) and call_name(n).split(".")[0] in names
                for n in ast.walk(inner)
            ):
                targets.append((s.cell, inner))
    fits = {id(s.node) for s, _ in model_fits(facts)}
    touched = {c for c, _ in targets} | {c for c, _ in unwrap}
    if targets or unwrap:
        remove_statements(
            nb,
            targets,
            unwrap=unwrap,
            protect=lambda s: id(s.node) in fits,
            max_cascade=20,
            what="MLflow calls",
        )
    # Install lines (IPython, not Python: edited as shell words).
    edits: dict[int, list[Edit]] = defaultdict(list)
    for line in [ln for ln in pip_lines(nb) if any(module_of(p) == "mlflow" for p in ln.packages)]:
        rest = [a for a in line.args if a.startswith("-") or module_of(a) != "mlflow"]
        keep = [a for a in rest if not a.startswith("-")]
        edits[line.cell].append(_line_edit(nb, line, line.render(rest) if keep else None))
        touched.add(line.cell)
    nb.edit(dict(edits))
    nb.drop_cells_without_code(touched)
    nb.note(f"removed MLflow: {len(targets)} statement(s), {len(unwrap)} run block(s) unwrapped")


def imports_scattered(nb: Notebook, rng: np.random.Generator) -> None:
    """Imports (and their installs) moved from the top to the cell that first uses them."""
    facts = Facts.of(nb)
    moves: dict[int, list[tuple[int, ast.Import | ast.ImportFrom]]] = defaultdict(list)
    for s in facts.statements:
        node = s.node
        if not isinstance(node, ast.Import | ast.ImportFrom) or not s.code.owns_lines(node):
            continue
        names = bound_names(node)
        use = next(
            (
                t
                for t in facts.statements
                if (t.cell, t.index) > (s.cell, s.index) and used_names(t.node) & names
            ),
            None,
        )
        if use is not None and use.cell > s.cell:
            moves[use.cell].append((s.cell, node))
    moved = sum(len(v) for v in moves.values())
    if moved < 3 or len(moves) < 2:
        raise NotApplicable(f"only {moved} import(s) could move next to a later first use")
    installs = [ln for ln in pip_lines(nb) if ln.cell < min(moves)]
    edits: dict[int, list[Edit]] = defaultdict(list)
    taken: dict[tuple[int, int], list[str]] = {}
    for cell in sorted(moves):
        imports = moves[cell]
        code = nb.code(cell)
        assert code.tree is not None
        lines: list[str] = []
        for origin, node in imports:
            modules = {
                (a.name if isinstance(node, ast.Import) else (node.module or "")).split(".")[0]
                for a in node.names
            }
            for line in installs:
                placed = taken.setdefault((line.cell, line.lineno), [])
                mine = [p for p in line.packages if module_of(p) in modules and p not in placed]
                if mine:
                    placed.extend(mine)
                    flags = [a for a in line.args if a.startswith("-")]
                    lines.append(line.render([*flags, *mine]).strip())
            source = nb.code(origin)
            top = source.line_start(source.top_line(node))
            end = source.line_start((node.end_lineno or node.lineno) + 1)
            lines.append(source.text[top:end].rstrip("\n"))
            edits[origin].append(source.delete_stmt(node))
        first = code.tree.body[0]
        at = code.line_start(code.top_line(first))
        edits[cell].append(Edit(at, at, "\n".join(lines) + "\n"))
        nb.note(f"{len(imports)} import(s) moved to cell {cell}, where they are first used")
    for line in installs:
        gone = taken.get((line.cell, line.lineno))
        if gone:
            rest = [a for a in line.args if a not in gone]
            keep = [a for a in rest if not a.startswith("-")]
            edits[line.cell].append(_line_edit(nb, line, line.render(rest) if keep else None))
    nb.edit(dict(edits))
    nb.drop_cells_without_code({origin for v in moves.values() for origin, _ in v})


def unpinned_installs(nb: Notebook, rng: np.random.Generator) -> None:
    """Version pins removed from every install line (``pandas==2.2.2`` -> ``pandas``)."""
    edits: dict[int, list[Edit]] = defaultdict(list)
    count = 0
    for line in pip_lines(nb):
        if not any(pinned(p) for p in line.packages):
            continue
        args = []
        for a in line.args:
            if not a.startswith("-") and pinned(a):
                extras = a[len(package_name(a)) :]
                extras = extras[: extras.index("]") + 1] if extras.startswith("[") else ""
                args.append(package_name(a) + extras)
                count += 1
            else:
                args.append(a)
        edits[line.cell].append(_line_edit(nb, line, line.render(args)))
    if not count:
        raise NotApplicable("no pinned install")
    nb.edit(dict(edits))
    nb.note(f"removed the version pins of {count} install(s)")


def _use_before_definition(nb: Notebook) -> int:
    """Code cells that read a name the notebook first defines in a later cell."""
    first: dict[str, int] = {}
    uses: list[tuple[int, set[str]]] = []
    for pos, i in enumerate(nb.python_cells()):
        tree = nb.code(i).tree
        assert tree is not None
        for stmt in tree.body:
            for name in bound_names(stmt):
                first.setdefault(name, pos)
        uses.append((pos, used_names(tree)))
    return sum(1 for pos, names in uses if any(first.get(n, -1) > pos for n in names))


def cells_shuffled(nb: Notebook, rng: np.random.Generator) -> None:
    """The cells (all but the first) put in a random order: the notebook no longer runs top
    to bottom."""
    n = len(nb.cells)
    if len(nb.python_cells()) < 4:
        raise NotApplicable("fewer than 4 code cells to shuffle")
    for _ in range(20):
        order = [0, *(int(i) + 1 for i in rng.permutation(n - 1))]
        trial = Notebook(nb.data, item=nb.item)
        trial.reorder(order)
        broken = _use_before_definition(trial)
        if broken >= 2:
            nb.reorder(order)
            nb.note(f"cells shuffled: {broken} code cell(s) now read names defined further down")
            return
    raise NotApplicable("no shuffle makes cells depend on later ones")


def markdown_stripped(nb: Notebook, rng: np.random.Generator) -> None:
    """Every markdown cell removed: headings, explanations, conclusions."""
    text = [i for i in range(len(nb.cells)) if nb.kind(i) == "markdown" and nb.source(i).strip()]
    if len(text) < 2:
        raise NotApplicable("fewer than 2 markdown cells")
    for i in sorted((i for i in range(len(nb.cells)) if nb.kind(i) == "markdown"), reverse=True):
        nb.delete(i)
    nb.note(f"removed {len(text)} markdown cell(s)")


def one_giant_cell(nb: Notebook, rng: np.random.Generator) -> None:
    """Every code cell after the first merged into one; markdown between them becomes
    comments in it."""
    code = nb.python_cells()
    if len(code) < 5:
        raise NotApplicable("fewer than 5 code cells to merge")
    first, last = code[1], code[-1]
    merged: list[str] = []
    outputs: list[object] = []
    keep_apart: list[int] = []
    for i in range(first, last + 1):
        kind = nb.kind(i)
        if kind == "markdown":
            lines = [f"# {ln}".rstrip() for ln in nb.source(i).strip().splitlines()]
            if lines:
                merged.append("\n".join(lines))
        elif kind == "code" and i in code:
            text = nb.source(i).strip("\n")
            if text.strip():
                merged.append(text)
            outputs.extend(nb.cells[i].get("outputs") or [])
        else:
            keep_apart.append(i)
    cell = nb.cells[first]
    giant = "\n\n".join(merged)
    nb.set_source(first, giant)
    cell["outputs"] = outputs
    for i in range(last, first, -1):
        if i not in keep_apart:
            nb.delete(i)
    nb.note(f"{len(code) - 1} code cells merged into cell {first}")
