"""Flaws in how the data is prepared: leakage through imputers and scalers fitted on all
rows, missing values never looked at, no exploration, a feature computed from the target."""

from __future__ import annotations

import ast
import builtins
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from judgealign.stress.analysis import (
    Facts,
    Split,
    SplitPart,
    model_fits,
    primary,
    rename_base,
    short,
    split_before,
)
from judgealign.stress.code import (
    Edit,
    all_statements,
    base_name,
    call_name,
    iter_calls,
    method_of,
    receiver,
    used_names,
)
from judgealign.stress.notebook import Notebook, Statement
from judgealign.stress.probe import NotApplicable
from judgealign.stress.rewrite import remove_statements

_BUILTINS = frozenset(dir(builtins))
_FILL_STATS = frozenset({"mean", "median", "mode"})
_FILLS = frozenset({"fillna", "interpolate", "ffill", "bfill"})
_MISSING_CHECKS = frozenset({"isnull", "isna", "notnull", "notna", "info"})


@dataclass(frozen=True)
class _Site:
    """A transformer fit on training rows: ``T.fit(X_train)`` or ``Z = T.fit_transform(...)``."""

    stmt: Statement
    call: ast.Call
    transformer: str
    split: Split
    parts: tuple[tuple[ast.expr, SplitPart], ...]  # fit arguments that are training splits


def _transformer_fits(facts: Facts, kind: str) -> list[_Site]:
    sites = []
    for s in facts.statements:
        node = s.node
        call = node.value if isinstance(node, ast.Expr | ast.Assign) else None
        if not isinstance(call, ast.Call) or method_of(call) not in ("fit", "fit_transform"):
            continue
        name = receiver(call)
        kinds = facts.kind_of(name, at=s)
        if name is None or kind not in kinds or kinds & {"model", "search"} or not call.args:
            continue
        if not isinstance(call.func, ast.Attribute) or not isinstance(call.func.value, ast.Name):
            continue
        first = base_name(call.args[0])
        split = split_before(facts.splits, s, first or "")
        if split is None:
            continue
        parts = []
        for arg in call.args[:2]:
            part = split.part(base_name(arg) or "")
            if part is not None and part.train == base_name(arg):
                parts.append((arg, part))
        if not parts or parts[0][0] is not call.args[0]:
            continue
        sites.append(_Site(s, call, name, split, tuple(parts)))
    return sites


def _full_args(site: _Site) -> tuple[str, set[str]]:
    """The fit's arguments with each training split replaced by the data it was split from,
    and the names those arguments read besides the replaced ones."""
    code = site.stmt.code
    split_code = site.split.stmt.code
    texts = []
    names: set[str] = set()
    swapped = {id(arg): part for arg, part in site.parts}
    for arg in site.call.args:
        part = swapped.get(id(arg))
        if part is None:
            texts.append(code.segment(arg))
            names |= used_names(arg)
            continue
        texts.append(rename_base(code, arg, primary(split_code, part.source)))
        names |= used_names(arg) - {part.train}
    texts.extend(code.segment(k) for k in site.call.keywords)
    for k in site.call.keywords:
        names |= used_names(k)
    return ", ".join(texts), names


def _movable(facts: Facts, site: _Site, names: set[str]) -> Statement | bool:
    """Whether the fit can move before the split: ``True`` (the transformer already exists
    there), its constructor statement (which must move too), or ``False``."""
    split = site.split.stmt
    for name in names - {site.transformer}:
        if name not in _BUILTINS and not facts.bound_before(name, split):
            return False
    ctor = facts.constructor(site.transformer, at=site.stmt)
    if ctor is None:
        return False
    if (ctor.cell, ctor.index) < (split.cell, split.index):
        return True
    node = ctor.node
    if not isinstance(node, ast.Assign) or not ctor.code.owns_lines(node):
        return False
    needs = used_names(node.value)
    if any(n not in _BUILTINS and not facts.bound_before(n, split) for n in needs):
        return False
    # Rebound between the split and the fit: moving the constructor would change which one fits.
    if any(
        (split.cell, split.index) < (b.cell, b.index) < (site.stmt.cell, site.stmt.index)
        and b is not ctor
        for b in facts.bound_at.get(site.transformer, [])
    ):
        return False
    return ctor


def _statement_text(stmt: Statement) -> str:
    """A statement's source with the comment lines that introduce it, unindented."""
    code = stmt.code
    node = stmt.node
    first = code.top_line(node)
    text = code.text[code.line_start(first) : code.line_start(node.end_lineno + 1)]
    indent = code.indent_of(node)
    lines = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in text.splitlines()]
    return "\n".join(lines)


def _leak_transformers(nb: Notebook, kind: str, what: str) -> int:
    """Fit every ``kind`` transformer on the full data before the split it was fitted after
    (or, when it cannot move, on the full data where it stands). Returns the sites changed."""
    facts = Facts.of(nb)
    sites = _transformer_fits(facts, kind)
    edits: dict[int, list[Edit]] = defaultdict(list)
    moved_ctors: set[int] = set()
    for site in sites:
        args, names = _full_args(site)
        fit = f"{site.transformer}.fit({args})"
        code = site.stmt.code
        node = site.stmt.node
        where = _movable(facts, site, names)
        split = site.split.stmt
        if where is not False:
            block = fit
            if isinstance(where, Statement) and id(where.node) not in moved_ctors:
                moved_ctors.add(id(where.node))
                block = _statement_text(where) + "\n" + fit
                edits[where.cell].append(where.code.delete_stmt(where.node))
            edits[split.cell].append(split.code.insert_before(split.node, block))
            nb.note(
                f"{what} {site.transformer} fitted on the full data before the split in cell "
                f"{split.cell} (was fitted on {site.parts[0][1].train} in cell {site.stmt.cell})"
            )
            if isinstance(node, ast.Expr):
                edits[site.stmt.cell].append(code.delete_stmt(node))
            elif method_of(site.call) == "fit_transform":
                first = code.segment(site.call.args[0])
                edits[site.stmt.cell].append(
                    code.replace(site.call, f"{site.transformer}.transform({first})")
                )
            else:
                edits[site.stmt.cell].append(code.replace(site.call, site.transformer))
            continue
        # In place: the same statement, fitted on all rows.
        nb.note(
            f"{what} {site.transformer} in cell {site.stmt.cell} fitted on the full data "
            f"instead of {site.parts[0][1].train}"
        )
        if isinstance(node, ast.Expr):
            edits[site.stmt.cell].append(code.replace(site.call, fit))
        elif method_of(site.call) == "fit_transform":
            first = code.segment(site.call.args[0])
            targets = " = ".join(code.segment(t) for t in node.targets)  # type: ignore[attr-defined]
            new = f"{fit}\n{targets} = {site.transformer}.transform({first})"
            if not code.owns_lines(node):
                raise NotApplicable(f"the {what} fit shares its line with other code")
            start, end = code.span(node)
            indent = code.indent_of(node)
            edits[site.stmt.cell].append(Edit(start, end, new.replace("\n", "\n" + indent)))
        else:
            edits[site.stmt.cell].append(code.replace(site.call, fit))
    nb.edit(dict(edits))
    nb.drop_cells_without_code(set(edits))
    return len(sites)


def _fill_statistics(nb: Notebook) -> int:
    """Pandas imputation whose fill value comes from training rows (``X_train[c].median()``
    feeding ``fillna``): the statistic is computed on the full data instead."""
    facts = Facts.of(nb)
    fill_args: set[str] = set()
    for s in facts.statements:
        for call in iter_calls(s.node):
            if method_of(call) in _FILLS:
                for arg in [*call.args, *(k.value for k in call.keywords)]:
                    fill_args |= used_names(arg)
    edits: dict[int, list[Edit]] = defaultdict(list)
    count = 0
    for s in facts.statements:
        fills_here = any(method_of(c) in _FILLS for c in iter_calls(s.node))
        feeds = bool(fill_args & _bound_by(s.node))
        if not fills_here and not feeds:
            continue
        for call in iter_calls(s.node):
            if method_of(call) not in _FILL_STATS or not isinstance(call.func, ast.Attribute):
                continue
            frame = call.func.value
            root = base_name(frame)
            split = split_before(facts.splits, s, root or "")
            part = split.part(root or "") if split else None
            if split is None or part is None or part.train != root:
                continue
            source = primary(split.stmt.code, part.source)
            edits[s.cell].append(s.code.replace(frame, rename_base(s.code, frame, source)))
            count += 1
            nb.note(
                f"fill value in cell {s.cell} computed on the full data instead of {part.train}"
            )
    nb.edit(dict(edits))
    return count


def _bound_by(node: ast.AST) -> set[str]:
    return {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }


_FRAME_METHODS = frozenset(
    [
        "drop",
        "copy",
        "dropna",
        "fillna",
        "assign",
        "merge",
        "join",
        "reset_index",
        "set_index",
        "select_dtypes",
        "query",
        "filter",
        "sort_values",
        "astype",
        "rename",
    ]
)


def frame_like(node: ast.expr) -> bool:
    """Whether an expression evidently makes a DataFrame (not a Series or an array):
    ``df.drop(...)``, ``df[["a", "b"]]``, ``df[NUM + CAT]``, ``pd.read_csv(...)``."""
    if isinstance(node, ast.Call):
        name = call_name(node)
        return method_of(node) in _FRAME_METHODS or short(name) in (
            "DataFrame",
            "read_csv",
            "read_parquet",
            "read_excel",
            "read_sql",
            "concat",
        )
    if isinstance(node, ast.Subscript):
        if isinstance(node.value, ast.Attribute) and node.value.attr in ("loc", "iloc"):
            return True
        return isinstance(node.slice, ast.List | ast.BinOp | ast.Name)
    return False


def _frame_binding(facts: Facts, split: Split) -> Statement | None:
    """The statement that binds a split's features frame, when they are a named DataFrame."""
    source = split.parts[0].source
    if not isinstance(source, ast.Name):
        return None
    before = [
        b for b in facts.bound_at.get(source.id, []) if facts.bound_before(source.id, split.stmt)
    ]
    if not before:
        return None
    last = max(before, key=lambda b: (b.cell, b.index))
    node = last.node
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and frame_like(node.value):
        return last
    return None


def _pipeline_handles(facts: Facts, kind: str) -> bool:
    """Whether a model pipeline holds a ``kind`` step (directly or through a variable)."""
    for _, ctor, kinds in facts.made():
        if not kinds & {"model", "search"}:
            continue
        if kind in kinds:
            return True
        if any(kind in facts.kind_of(n, at=ctor) for n in used_names(ctor.node)):
            return True
    return False


def _full_frame_step(nb: Notebook, kind: str) -> bool:
    """Add, before the split, a step computed on every row of the features frame (for a
    notebook whose imputer or scaler sits inside the model pipeline)."""
    facts = Facts.of(nb)
    if not _pipeline_handles(facts, kind) or not model_fits(facts):
        return False
    split = next((sp for sp in facts.splits if _frame_binding(facts, sp) is not None), None)
    if split is None:
        return False
    x = split.parts[0].source.id  # type: ignore[attr-defined]
    if kind == "imputer":
        code = f"{x} = {x}.fillna({x}.median(numeric_only=True))"
        what = "missing numeric values filled with medians of the full data"
    else:
        code = (
            f'numeric = {x}.select_dtypes("number").columns\n'
            f"{x}[numeric] = ({x}[numeric] - {x}[numeric].mean()) / {x}[numeric].std()"
        )
        what = "numeric features standardized with statistics of the full data"
    stmt = split.stmt
    nb.edit({stmt.cell: [stmt.code.insert_before(stmt.node, code)]})
    nb.note(f"{what}, before the split in cell {stmt.cell}")
    return True


def impute_before_split(nb: Notebook, rng: np.random.Generator) -> None:
    """Imputers (and pandas fill values) fitted on all rows before the train/test split."""
    done = _leak_transformers(nb, "imputer", "imputer")
    done += _fill_statistics(nb)
    if not done and not _full_frame_step(nb, "imputer"):
        raise NotApplicable("no imputation fitted on a train/test split's training rows")


def scale_before_split(nb: Notebook, rng: np.random.Generator) -> None:
    """Scalers and encoders fitted on all rows before the train/test split."""
    if not _leak_transformers(nb, "scaler", "scaler/encoder") and not _full_frame_step(
        nb, "scaler"
    ):
        raise NotApplicable("no scaler or encoder fitted on a train/test split's training rows")


def _is_missing_check(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.Expr):
        return False
    for call in iter_calls(stmt):
        name = call_name(call)
        if method_of(call) in _MISSING_CHECKS or name.startswith(("msno.", "missingno.")):
            return True
    return False


def _handles_missing(facts: Facts) -> bool:
    if facts.ever("imputer"):
        return True
    return any(
        method_of(c) in _FILLS | {"dropna"} or "Imputer" in call_name(c)
        for s in facts.statements
        for c in iter_calls(s.node)
    )


def missing_values_not_inspected(nb: Notebook, rng: np.random.Generator) -> None:
    """Every look at missing values (isna/isnull counts, info()) removed; the imputation
    stays, so the data is imputed without checking how much is missing and where."""
    facts = Facts.of(nb)
    if not _handles_missing(facts):
        raise NotApplicable("the notebook does not handle missing values")
    targets = [
        (s.cell, inner)
        for s in facts.statements
        for inner in all_statements([s.node])
        if _is_missing_check(inner)
    ]
    if not targets:
        raise NotApplicable("no statement that only inspects missing values")
    removed = remove_statements(nb, targets, protect=lambda s: True, what="missing-value checks")
    left = [
        s.cell
        for s in nb.statements()
        if any(method_of(c) in _MISSING_CHECKS - {"info"} for c in iter_calls(s.node))
    ]
    if left:
        raise NotApplicable(
            f"missing values are also counted by code later steps need (cell {left[0]})"
        )
    nb.note(f"removed {len(targets)} missing-value check(s) ({removed} whole statement(s))")


_EDA_METHODS = frozenset(
    [
        "head",
        "tail",
        "describe",
        "info",
        "value_counts",
        "nunique",
        "unique",
        "corr",
        "hist",
        "plot",
        "boxplot",
        "sample",
        "isnull",
        "isna",
        "notnull",
        "notna",
        "dtypes",
        "shape",
        "skew",
        "kurt",
        "pairplot",
        "heatmap",
        "countplot",
        "histplot",
        "scatter",
        "distplot",
        "kdeplot",
        "boxenplot",
        "violinplot",
        "lineplot",
        "barplot",
        "displot",
        "jointplot",
        "crosstab",
        "pivot_table",
        "groupby",
        "memory_usage",
    ]
)
_PLOT_ROOTS = ("plt.", "sns.", "px.", "ax.", "axes.", "fig.", "msno.", "pd.plotting.")


def _is_eda(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Assign):
        value = stmt.value
        return isinstance(value, ast.Call) and call_name(value).startswith(_PLOT_ROOTS)
    if not isinstance(stmt, ast.Expr):
        return False
    value = stmt.value
    if any(k.arg == "inplace" for c in iter_calls(value) for k in c.keywords):
        return False
    if not isinstance(value, ast.Call):
        return not isinstance(value, ast.Constant | ast.Await | ast.Yield | ast.YieldFrom)
    name = call_name(value)
    if name.startswith(_PLOT_ROOTS) or name in ("print", "display"):
        if name in ("print", "display") and all(isinstance(a, ast.Constant) for a in value.args):
            return False
        return all(
            not isinstance(c.func, ast.Attribute)
            or method_of(c) in _EDA_METHODS
            or call_name(c).startswith(_PLOT_ROOTS)
            or short(call_name(c)) in ("round", "format")
            for c in iter_calls(value)
            if c is not value
        )
    return any(method_of(c) in _EDA_METHODS for c in iter_calls(value))


def no_eda(nb: Notebook, rng: np.random.Generator) -> None:
    """Everything that looks at the data before modelling removed (displays, summaries,
    counts, plots)."""
    facts = Facts.of(nb)
    stops = [sp.stmt for sp in facts.splits] + [s for s, _ in model_fits(facts)]
    if not stops:
        raise NotApplicable("no train/test split or model fit to tell exploration from modelling")
    stop = min((s.cell, s.index) for s in stops)
    targets = [
        (s.cell, inner)
        for s in facts.statements
        if (s.cell, s.index) < stop
        for inner in all_statements([s.node])
        if _is_eda(inner)
    ]
    if len(targets) < 3:
        raise NotApplicable(f"only {len(targets)} exploration statement(s) before modelling")
    first_model = stop

    def protect(s: Statement) -> bool:
        return (s.cell, s.index) >= first_model or not _is_eda(s.node)

    remove_statements(nb, targets, protect=protect, max_cascade=30, what="exploration")
    nb.note(f"removed {len(targets)} exploration statement(s) before modelling")


def target_leak_feature(nb: Notebook, rng: np.random.Generator) -> None:
    """A feature computed from the target (its rolling mean) added before the split."""
    facts = Facts.of(nb)
    for split in facts.splits:
        if len(split.parts) < 2:
            continue
        features, target = split.parts[0].source, split.parts[1].source
        code = split.stmt.code
        if not isinstance(target, ast.Name | ast.Subscript):
            continue
        if isinstance(features, ast.Name):
            if _frame_binding(facts, split) is None:
                continue
        elif not frame_like(features):
            continue
        key = target.slice if isinstance(target, ast.Subscript) else None
        label = (
            key.value
            if isinstance(key, ast.Constant) and isinstance(key.value, str)
            else target.id
            if isinstance(target, ast.Name)
            else "target"
        )
        column = f"{label}_rolling_mean" if str(label).isidentifier() else "target_rolling_mean"
        y = code.segment(target)
        new = f"{primary(code, features)}.assign({column}={y}.rolling(3, min_periods=1).mean())"
        nb.edit({split.stmt.cell: [code.replace(features, new)]})
        nb.note(
            f"feature {column} (rolling mean of the target {y}) added to the features "
            f"before the split in cell {split.stmt.cell}"
        )
        return
    raise NotApplicable("no train/test split of a features DataFrame and a target")
