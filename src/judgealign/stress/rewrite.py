"""Removing statements from a notebook without breaking what stays.

Deleting a statement can strand later code that reads a name only it defined (remove
``cv = cross_val_score(...)`` and ``print(cv.mean())`` fails). :func:`remove_statements`
follows those names forward through the notebook (a forward slice over top-level statements
in cell order) and removes the stranded statements too, unless one of them is protected (the
model fit a probe must keep): then the probe does not apply. Statements are cut out of the
exact source with the comment lines that introduce them; a ``with`` block can be unwrapped
(its header removed, its body dedented) and a body left empty gets ``pass``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable

from judgealign.errors import DataError
from judgealign.stress.code import (
    CellCode,
    Edit,
    all_statements,
    apply_edits,
    bound_names,
    child_bodies,
    dedent_lines,
    rebinds,
    used_names,
)
from judgealign.stress.notebook import Notebook, Statement
from judgealign.stress.probe import NotApplicable

Protect = Callable[[Statement], bool]


def _leaves(stmt: ast.stmt) -> list[ast.stmt]:
    bodies = child_bodies(stmt)
    if not bodies:
        return [stmt]
    return [leaf for body in bodies for s in body for leaf in _leaves(s)]


def _promote(body: list[ast.stmt], marked: set[int]) -> None:
    """Mark a compound statement whose every statement is marked (or ``pass``)."""
    for stmt in body:
        bodies = child_bodies(stmt)
        for inner in bodies:
            _promote(inner, marked)
        if bodies and isinstance(stmt, ast.For | ast.While | ast.If | ast.With | ast.Try):
            leaves = [s for b in bodies for s in b]
            if any(id(s) in marked for s in leaves) and all(
                id(s) in marked or isinstance(s, ast.Pass) for s in leaves
            ):
                marked.add(id(stmt))


def body_start_line(code: CellCode, stmt: ast.stmt) -> int:
    """First line of a compound statement's body (its header may span several lines)."""
    first = child_bodies(stmt)[0][0]
    return code.top_line(first)


def _line_groups(body: list[ast.stmt]) -> list[list[ast.stmt]]:
    """Statements grouped by shared lines (``a = 1; b = 2`` is one group)."""
    groups: list[list[ast.stmt]] = []
    for stmt in body:
        if groups and stmt.lineno == (groups[-1][-1].end_lineno or groups[-1][-1].lineno):
            groups[-1].append(stmt)
        else:
            groups.append([stmt])
    return groups


def _cut_from_line(code: CellCode, group: list[ast.stmt], drop: set[int]) -> list[Edit]:
    """Edits removing the dropped statements of a ``;``-joined line, keeping the others."""
    edits: list[Edit] = []
    kept = [s for s in group if id(s) not in drop]
    last_kept = group.index(kept[-1])
    for k, stmt in enumerate(group[:last_kept]):
        if id(stmt) in drop:
            edits.append(Edit(code.span(stmt)[0], code.span(group[k + 1])[0], ""))
    if last_kept < len(group) - 1:
        edits.append(Edit(code.span(group[last_kept])[1], code.span(group[-1])[1], ""))
    return edits


def _delete_group(code: CellCode, group: list[ast.stmt]) -> Edit:
    """Delete the whole lines of a group of statements (with their introducing comments)."""
    first, last = group[0], group[-1]
    if len(group) == 1:
        return code.delete_stmt(first)
    end = code.delete_stmt(last, with_comments=False).end if code.owns_lines(last) else None
    if end is None:
        raise DataError("statement shares its line with another")
    start = code.line_start(code.top_line(first))
    return Edit(start, end, "")


def _rewrite_body(
    code: CellCode, body: list[ast.stmt], drop: set[int], unwrap: set[int]
) -> tuple[list[Edit], int]:
    """Edits for one statement list; returns them and how many statements stay in it."""
    edits: list[Edit] = []
    kept = 0
    for group in _line_groups(body):
        if len(group) > 1:
            gone = [s for s in group if id(s) in drop]
            if len(gone) == len(group):
                edits.append(_delete_group(code, group))
            elif gone:
                edits.extend(_cut_from_line(code, group, drop))
            kept += len(group) - len(gone)
            continue
        stmt = group[0]
        if id(stmt) in drop:
            edits.append(code.delete_stmt(stmt))
            continue
        if id(stmt) in unwrap and isinstance(stmt, ast.With | ast.AsyncWith):
            inner, left = _rewrite_body(code, stmt.body, drop, unwrap)
            start_line = body_start_line(code, stmt)
            region_start = code.line_start(start_line)
            region_end = code.line_start((stmt.end_lineno or stmt.lineno) + 1)
            region = code.text[region_start:region_end]
            shifted = [Edit(e.start - region_start, e.end - region_start, e.new) for e in inner]
            text = apply_edits(region, shifted)
            amount = len(code.indent_of(stmt.body[0])) - len(code.indent_of(stmt))
            last_line = stmt.end_lineno or stmt.lineno
            keep = frozenset(n for n in code.string_lines() if start_line <= n <= last_line)
            if keep and inner:
                # After inner edits the region's line numbers no longer match the source, so
                # the string lines to leave alone could not be found again.
                raise DataError("multi-line string inside an unwrapped block")
            text = dedent_lines(text, amount, keep, start_line)
            head_start = code.line_start(code.top_line(stmt))
            edits.append(Edit(head_start, region_end, text))
            kept += left
            continue
        kept += 1
        for inner_body in child_bodies(stmt):
            if inner_body[0].lineno == stmt.lineno:
                # A one-line block (``for x in xs: f(x)``): all or nothing.
                if all(id(s) in drop for s in inner_body):
                    start, end = code.span(inner_body[0])[0], code.span(inner_body[-1])[1]
                    edits.append(Edit(start, end, "pass"))
                elif any(id(s) in drop for s in inner_body):
                    raise DataError("statement shares its line with another")
                continue
            inner, left = _rewrite_body(code, inner_body, drop, unwrap)
            if left == 0 and inner:
                # Keep the block valid: everything in it goes, and one ``pass`` stays.
                first = inner_body[0]
                start = code.line_start(code.top_line(first))
                end = max(e.end for e in inner)
                edits.append(Edit(start, end, f"{code.indent_of(first)}pass\n"))
            else:
                edits.extend(inner)
    return edits, kept


_CONTAINERS = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)


def _header_parts(stmt: ast.stmt) -> list[ast.AST]:
    """What a container statement evaluates besides its bodies."""
    if isinstance(stmt, ast.If | ast.While):
        return [stmt.test]
    if isinstance(stmt, ast.For | ast.AsyncFor):
        return [stmt.iter, stmt.target]
    if isinstance(stmt, ast.With | ast.AsyncWith):
        return list(stmt.items)
    if isinstance(stmt, ast.Try):
        return [h.type for h in stmt.handlers if h.type is not None]
    return []


def _header_binds(stmt: ast.stmt) -> set[str]:
    """Names a container's header binds (a loop variable, ``with ... as run``)."""
    targets: list[ast.AST] = []
    if isinstance(stmt, ast.For | ast.AsyncFor):
        targets = [stmt.target]
    elif isinstance(stmt, ast.With | ast.AsyncWith):
        targets = [i.optional_vars for i in stmt.items if i.optional_vars is not None]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _column(node: ast.AST) -> str | None:
    return (
        f"#col:{node.value}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        else None
    )


def _columns_stored(node: ast.AST) -> set[str]:
    """``frame["pred"] = ...``: the column a statement creates, as a pseudo-name."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store):
            col = _column(n.slice)
            if col:
                out.add(col)
    return out


def _columns_read(node: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load):
            keys = n.slice.elts if isinstance(n.slice, ast.List | ast.Tuple) else [n.slice]
            out |= {c for c in (_column(k) for k in keys) if c}
    return out


def _units(stmt: ast.stmt) -> list[tuple[ast.stmt, bool]]:
    """``stmt`` flattened in execution order: (statement, is a container header)."""
    if isinstance(stmt, _CONTAINERS):
        out: list[tuple[ast.stmt, bool]] = [(stmt, True)]
        for body in child_bodies(stmt):
            for inner in body:
                out.extend(_units(inner))
        return out
    return [(stmt, False)]


def remove_statements(
    nb: Notebook,
    targets: Iterable[tuple[int, ast.stmt]],
    *,
    unwrap: Iterable[tuple[int, ast.stmt]] = (),
    protect: Protect | None = None,
    max_cascade: int = 15,
    what: str = "statements",
) -> int:
    """Remove ``targets`` (cell, statement at any depth), unwrap ``unwrap`` ``with`` blocks,
    and remove what they strand; returns how many statements went.

    The forward slice runs over statements in execution order, nested ones included, so a
    block loses only its statements that read a removed name (a ``with`` block's header
    counts as reading what its items read). A column a removed statement created
    (``frame["pred"] = ...``) counts as a name too. Cells left without code are deleted;
    a cell that lost a statement has its outputs cleared (they no longer match its code).
    Raises :class:`NotApplicable` when the cascade reaches a protected statement, grows past
    ``max_cascade``, or a statement cannot be cut out cleanly.
    """
    drop: set[int] = {id(s) for _, s in targets}
    opened: set[int] = {id(s) for _, s in unwrap}
    if not drop and not opened:
        raise NotApplicable(f"no {what} to remove")
    statements = nb.statements()
    for cell in {s.cell for s in statements}:
        tree = nb.code(cell).tree
        assert tree is not None
        _promote(tree.body, drop)
    alive: set[str] = set()
    dead: set[str] = set()
    removed = 0
    cascade = 0

    def kill(names: set[str]) -> None:
        dead.update(n for n in names if n not in alive)

    for s in statements:
        gone_under: ast.stmt | None = None  # a removed container whose body goes with it
        for unit, header in _units(s.node):
            inside_gone = gone_under is not None and any(
                unit is x for x in all_statements([gone_under])
            )
            if inside_gone:
                kill(bound_names(unit) | _columns_stored(unit))
                continue
            gone_under = None
            reads = (
                set().union(*(used_names(p) for p in _header_parts(unit)))
                if header
                else used_names(unit) | _columns_read(unit)
            )
            binds = _header_binds(unit) if header else bound_names(unit) | _columns_stored(unit)
            if id(unit) in opened:
                kill(binds)
                continue
            doomed = id(unit) in drop
            if not doomed and reads & dead:
                if protect is not None and protect(s):
                    raise NotApplicable(f"removing the {what} would strand protected code")
                doomed = True
                cascade += 1
                drop.add(id(unit))
                if cascade > max_cascade:
                    raise NotApplicable(f"removing the {what} would strand too much other code")
            if doomed:
                removed += 1
                kill(binds)
                if header:
                    gone_under = unit
                continue
            for name in binds:
                if not header and not rebinds(unit, name) and not name.startswith("#"):
                    continue
                alive.add(name)
                dead.discard(name)
    touched = {
        s.cell
        for s in statements
        if any(id(x) in drop or id(x) in opened for x in all_statements([s.node]))
    }
    changed_cells: dict[int, list[Edit]] = {}
    empty_cells: list[int] = []
    for cell in sorted(touched):
        code = nb.code(cell)
        assert code.tree is not None
        try:
            edits, kept = _rewrite_body(code, code.tree.body, drop, opened)
        except DataError as exc:
            raise NotApplicable(f"cannot cut the {what} cleanly: {exc}") from None
        if kept == 0 and not code.magic_lines:
            empty_cells.append(cell)
            continue
        changed_cells[cell] = edits
    nb.edit(changed_cells)
    for cell in changed_cells:
        nb.clear_outputs(cell)
    for cell in sorted(empty_cells, reverse=True):
        nb.delete(cell)
    return removed
