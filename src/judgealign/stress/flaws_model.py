"""Flaws in how the model is trained, evaluated and used: fitted on the evaluation rows, no
validation or tuning, seeds not fixed, a shuffled time split, metrics on the training set,
the trained model never used, or reloaded from the wrong file."""

from __future__ import annotations

import ast
import re
from collections import defaultdict

import numpy as np

from judgealign.stress.analysis import (
    CV_CALLS,
    CV_SPLITTERS,
    METRIC_METHODS,
    PREDICT_METHODS,
    SEARCH,
    SEED_CALLS,
    SEED_KEYWORDS,
    Facts,
    Split,
    is_metric_call,
    metric_functions,
    model_fits,
    predicts,
    primary,
    short,
    split_before,
)
from judgealign.stress.code import (
    CellCode,
    Edit,
    all_statements,
    apply_edits,
    call_name,
    iter_calls,
    method_of,
    receiver,
    used_names,
)
from judgealign.stress.notebook import Notebook, Statement
from judgealign.stress.probe import NotApplicable
from judgealign.stress.rewrite import remove_statements


def remove_keywords(code: CellCode, call: ast.Call, keywords: list[ast.keyword]) -> list[Edit]:
    """Cut ``keywords`` out of ``call`` with the commas that join them to their neighbours."""
    items: list[ast.AST] = sorted(
        [*call.args, *call.keywords],
        key=lambda n: (n.lineno, n.col_offset),  # type: ignore[attr-defined]
    )
    gone = {id(k) for k in keywords}
    kept = [k for k, n in enumerate(items) if id(n) not in gone]
    if not kept:
        return [Edit(code.span(items[0])[0], code.span(items[-1])[1], "")]
    edits = [
        Edit(code.span(n)[0], code.span(items[k + 1])[0], "")
        for k, n in enumerate(items[: kept[-1]])
        if id(n) in gone
    ]
    if kept[-1] < len(items) - 1:
        edits.append(Edit(code.span(items[kept[-1]])[1], code.span(items[-1])[1], ""))
    return edits


def _on_full_data(code: CellCode, node: ast.expr, split: Split) -> tuple[str, list[str]]:
    """``node``'s source with every training split it reads replaced by the data that split
    was made from (``X_train['a'].to_frame()`` -> ``data.drop('y', axis=1)['a'].to_frame()``),
    and the names replaced."""
    start = code.span(node)[0]
    edits: list[Edit] = []
    swapped: list[str] = []
    for n in ast.walk(node):
        if not (isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)):
            continue
        part = split.part(n.id)
        if part is None or part.train != n.id:
            continue
        if code.segment(n) != n.id:
            raise NotApplicable("cannot locate a fit argument in its cell (f-string)")
        a, b = code.span(n)
        edits.append(Edit(a - start, b - start, primary(split.stmt.code, part.source)))
        swapped.append(n.id)
    return apply_edits(code.segment(node), edits), swapped


def fit_on_full_data(nb: Notebook, rng: np.random.Generator) -> None:
    """The model fitted on all rows (train and test) instead of the training split."""
    facts = Facts.of(nb)
    edits: dict[int, list[Edit]] = defaultdict(list)
    for s, call in model_fits(facts):
        args = call.args[:2]
        names = [n.id for a in args[:1] for n in ast.walk(a) if isinstance(n, ast.Name)]
        split = next(
            (sp for n in names if (sp := split_before(facts.splits, s, n)) is not None), None
        )
        if split is None:
            continue  # the features are not a training split: nothing to swap consistently
        planned = [(arg, *_on_full_data(s.code, arg, split)) for arg in args]
        if not planned[0][2]:
            continue
        for arg, text, swapped in planned:
            if swapped:
                edits[s.cell].append(s.code.replace(arg, text))
        gone = ", ".join(n for _, _, sw in planned for n in sw)
        nb.note(f"model fit in cell {s.cell} uses the full data instead of {gone}")
    if not edits:
        raise NotApplicable("no model fitted on a train/test split's training rows")
    nb.edit(dict(edits))


def _needs_a_model(facts: Facts) -> None:
    """Training flaws mean nothing where no model is trained (the dimension is N/A there)."""
    if not model_fits(facts):
        raise NotApplicable("no model is fitted")


def _estimator_of(call: ast.Call) -> ast.expr | None:
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg == "estimator"), None)


_SEARCH_ONLY = frozenset({"best_score_", "cv_results_", "best_index_", "n_splits_", "scorer_"})
_VALIDATION_KEYWORDS = frozenset({"validation_split", "validation_data", "eval_set", "valid_sets",
                                  "valid_names", "early_stopping_rounds", "validation_freq",
                                  "eval_metric"})  # fmt: skip


def _unwrap_searches(nb: Notebook) -> list[str]:
    """Replace each hyperparameter search by the estimator it tunes; returns the grids'
    variable names (now unused)."""
    facts = Facts.of(nb)
    edits: dict[int, list[Edit]] = defaultdict(list)
    grids: list[str] = []
    for s in facts.statements:
        node = s.node
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not (
            isinstance(target, ast.Name)
            and isinstance(value, ast.Call)
            and SEARCH.match(short(call_name(value)))
        ):
            continue
        est = _estimator_of(value)
        if est is None:
            continue
        grid = value.args[1] if len(value.args) > 1 else None
        grid = grid or next(
            (k.value for k in value.keywords if k.arg in ("param_grid", "param_distributions")),
            None,
        )
        if isinstance(grid, ast.Name):
            grids.append(grid.id)
        search = target.id
        if isinstance(est, ast.Name):
            edits[s.cell].append(s.code.delete_stmt(node))
            new_name = est.id
        else:
            edits[s.cell].append(s.code.replace(value, s.code.segment(est)))
            comments = s.code.comment_lines_above(node)
            top = s.code.top_line(node)
            said = "".join(s.code.lines[top - 1 : top - 1 + comments])
            if re.search(r"grid|search|tun|cross|\bcv\b", said, re.I):
                # The comment that announced the search would now describe code that is gone.
                start = s.code.line_start(top)
                edits[s.cell].append(Edit(start, s.code.line_start(top + comments), ""))
            new_name = search
        later = [t for t in facts.statements if (t.cell, t.index) > (s.cell, s.index)]
        for t in later:
            if search in {
                n.id
                for n in ast.walk(t.node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }:
                break  # rebound: later uses are of something else
            edits[t.cell].extend(_rename_search(t, search, new_name))
        nb.note(f"{short(call_name(value))} in cell {s.cell} replaced by the bare estimator")
    nb.edit(dict(edits))
    return grids


def _rename_search(t: Statement, search: str, new: str) -> list[Edit]:
    out: list[Edit] = []
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(t.node):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    for node in ast.walk(t.node):
        if not (
            isinstance(node, ast.Name) and node.id == search and isinstance(node.ctx, ast.Load)
        ):
            continue
        if t.code.segment(node) != search:
            raise NotApplicable("cannot locate the search in its cell (f-string)")
        parent = parents.get(id(node))
        if isinstance(parent, ast.Attribute) and parent.attr == "best_estimator_":
            out.append(t.code.replace(parent, new))
        elif isinstance(parent, ast.Attribute) and parent.attr == "best_params_":
            out.append(t.code.replace(parent, f"{new}.get_params()"))
        elif isinstance(parent, ast.Attribute) and parent.attr in _SEARCH_ONLY:
            continue  # the statement goes (see no_validation_or_tuning)
        elif new != search:
            out.append(t.code.replace(node, new))
    return out


def _uses_search_results(stmt: ast.stmt) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr in _SEARCH_ONLY for n in ast.walk(stmt))


def _cross_validates(stmt: ast.stmt) -> bool:
    return any(short(call_name(c)) in CV_CALLS for c in iter_calls(stmt))


def _makes_splitter(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Assign)
        and isinstance(stmt.value, ast.Call)
        and bool(CV_SPLITTERS.match(short(call_name(stmt.value))))
    )


def no_validation_or_tuning(nb: Notebook, rng: np.random.Generator) -> None:
    """Hyperparameter searches, cross-validation and validation sets removed: one fit with
    fixed hyperparameters, checked only on the test set."""
    _needs_a_model(Facts.of(nb))
    grids = _unwrap_searches(nb)
    # Validation sets handed to fit (Keras, LightGBM, XGBoost).
    edits: dict[int, list[Edit]] = defaultdict(list)
    for s in nb.statements():
        for call in iter_calls(s.node):
            if method_of(call) not in ("fit", "train") and short(call_name(call)) != "train":
                continue
            gone = [kw for kw in call.keywords if kw.arg in _VALIDATION_KEYWORDS]
            if gone:
                edits[s.cell].extend(remove_keywords(s.code, call, gone))
                names = ", ".join(f"{kw.arg}=" for kw in gone)
                nb.note(f"validation argument(s) {names} removed from the fit in cell {s.cell}")
    nb.edit(dict(edits))
    facts = Facts.of(nb)
    fits = {id(s.node) for s, _ in model_fits(facts)}
    still_used = {n for s in facts.statements for n in used_names(s.node)}
    targets = [
        (s.cell, inner)
        for s in facts.statements
        for inner in all_statements([s.node])
        if _uses_search_results(inner)
        or _cross_validates(inner)
        or (_makes_splitter(inner) and inner is s.node)
        or (
            inner is s.node
            and isinstance(inner, ast.Assign)
            and any(
                isinstance(t, ast.Name) and t.id in grids and t.id not in still_used
                for t in inner.targets
            )
        )
    ]
    if targets:
        removed = remove_statements(
            nb,
            targets,
            protect=lambda s: id(s.node) in fits,
            max_cascade=25,
            what="cross-validation",
        )
        nb.note(f"removed {removed} cross-validation statement(s)")
    if not nb.notes:
        raise NotApplicable("no hyperparameter search, cross-validation or validation set")


def _is_seed(value: ast.expr) -> bool:
    """A seed value (``0``, ``SEED``, ``np.random.RandomState(1)``), not a feature-engine
    ``random_state=["col"]`` list of columns."""
    if isinstance(value, ast.Constant):
        return isinstance(value.value, int) and not isinstance(value.value, bool)
    return isinstance(value, ast.Name | ast.Attribute | ast.Call)


def seeds_removed(nb: Notebook, rng: np.random.Generator) -> None:
    """Every fixed seed removed (``random_state=``, ``np.random.seed(...)``)."""
    facts = Facts.of(nb)
    _needs_a_model(facts)
    edits: dict[int, list[Edit]] = defaultdict(list)
    count = 0
    for s in facts.statements:
        for call in iter_calls(s.node):
            gone = [kw for kw in call.keywords if kw.arg in SEED_KEYWORDS and _is_seed(kw.value)]
            if gone:
                edits[s.cell].extend(remove_keywords(s.code, call, gone))
                count += len(gone)
    nb.edit(dict(edits))
    targets: list[tuple[int, ast.stmt]] = [
        (s.cell, inner)
        for s in nb.statements()
        for inner in all_statements([s.node])
        if isinstance(inner, ast.Expr)
        and isinstance(inner.value, ast.Call)
        and call_name(inner.value) in SEED_CALLS
    ]
    used = {n for s in nb.statements() for n in used_names(s.node)}
    for s in nb.statements():
        node = s.node
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and all(
                isinstance(t, ast.Name)
                and re.search(r"seed|random_state", t.id, re.I)
                and t.id not in used
                for t in node.targets
            )
        ):
            targets.append((s.cell, node))
    if targets:
        remove_statements(nb, targets, protect=lambda s: True, what="seed settings")
    if not count and not targets:
        raise NotApplicable("no fixed random seed")
    nb.note(f"removed {count} random_state/seed argument(s) and {len(targets)} seed statement(s)")


def shuffled_time_split(nb: Notebook, rng: np.random.Generator) -> None:
    """A time-ordered split made shuffled: ``shuffle=False`` becomes ``True`` and
    ``TimeSeriesSplit`` becomes a shuffled ``KFold``."""
    facts = Facts.of(nb)
    _needs_a_model(facts)
    edits: dict[int, list[Edit]] = defaultdict(list)
    needs_kfold = False
    for s in facts.statements:
        for call in iter_calls(s.node):
            name = call_name(call)
            if short(name) == "train_test_split":
                for kw in call.keywords:
                    if (
                        kw.arg == "shuffle"
                        and isinstance(kw.value, ast.Constant)
                        and kw.value.value is False
                    ):
                        edits[s.cell].append(s.code.replace(kw.value, "True"))
                        nb.note(f"train_test_split in cell {s.cell} now shuffles")
            elif short(name) == "TimeSeriesSplit":
                args = [s.code.segment(a) for a in call.args]
                args += [s.code.segment(k) for k in call.keywords if k.arg == "n_splits"]
                prefix = name.rsplit(".", 1)[0] + "." if "." in name else ""
                needs_kfold = needs_kfold or not prefix
                new = f"{prefix}KFold({', '.join([*args, 'shuffle=True', 'random_state=0'])})"
                edits[s.cell].append(s.code.replace(call, new))
                nb.note(f"TimeSeriesSplit in cell {s.cell} replaced by a shuffled KFold")
    if not edits:
        raise NotApplicable("no time-ordered split (shuffle=False or TimeSeriesSplit)")
    if needs_kfold and "KFold" not in facts.bound_at:
        for s in facts.statements:
            node = s.node
            if isinstance(node, ast.ImportFrom) and any(
                a.name == "TimeSeriesSplit" for a in node.names
            ):
                alias = next(a for a in node.names if a.name == "TimeSeriesSplit")
                edits[s.cell].append(s.code.replace(alias, "KFold, TimeSeriesSplit"))
                break
        else:
            raise NotApplicable("TimeSeriesSplit is not imported by name")
    nb.edit(dict(edits))


def _outside_functions(stmt: ast.stmt) -> list[ast.AST]:
    """Nodes of ``stmt`` not inside a function or class body."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
            ):
                stack.append(child)
    return out


def metrics_on_training_set(nb: Notebook, rng: np.random.Generator) -> None:
    """Every held-out metric computed on the training data instead (the predictions it
    scores are made on the training rows)."""
    facts = Facts.of(nb)
    held = facts.held_out
    scorers = metric_functions(nb)
    models = facts.ever("model", "search")
    preds: dict[str, tuple[Statement, ast.expr]] = {}
    for s in facts.statements:
        node = s.node
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and predicts(node.value)
        ):
            preds[node.targets[0].id] = (s, node.value)
        else:
            for name in {
                n.id
                for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }:
                preds.pop(name, None)

    def on_train(code: CellCode, node: ast.expr, depth: int = 0) -> str | None:
        """``node``'s source with held-out data swapped for training data (predictions
        inlined and recomputed on the training rows); None when it reads no held-out data."""
        start, _ = code.span(node)
        local: list[Edit] = []
        for n in ast.walk(node):
            if not (isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)):
                continue
            if n.id in held:
                new = held[n.id]
            elif n.id in preds and depth < 3:
                ps, pv = preds[n.id]
                inner = on_train(ps.code, pv, depth + 1)
                if inner is None:
                    continue
                new = (
                    inner
                    if isinstance(pv, ast.Call | ast.Subscript | ast.Attribute)
                    else f"({inner})"
                )
            else:
                continue
            if code.segment(n) != n.id:
                raise NotApplicable("cannot locate a metric argument in its cell (f-string)")
            a, b = code.span(n)
            local.append(Edit(a - start, b - start, new))
        if not local:
            return None
        return apply_edits(code.segment(node), local)

    edits: dict[int, list[Edit]] = defaultdict(list)
    for s in facts.statements:
        if isinstance(s.node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for node in _outside_functions(s.node):
            if not isinstance(node, ast.Call):
                continue
            scoring = (
                is_metric_call(node)
                or call_name(node) in scorers
                or (method_of(node) in METRIC_METHODS and receiver(node) in models)
            )
            if not scoring:
                continue
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                new = on_train(s.code, arg)
                if new is not None:
                    edits[s.cell].append(s.code.replace(arg, new))
    # Metric calls nested in one another (print(f1_score(...))) are edited once, outermost.
    for cell, cell_edits in edits.items():
        cell_edits.sort(key=lambda e: (e.start, -e.end))
        kept: list[Edit] = []
        for e in cell_edits:
            if kept and e.start < kept[-1].end:
                continue
            kept.append(e)
        edits[cell] = kept
    if not any(edits.values()):
        raise NotApplicable("no metric computed on held-out data")
    nb.edit(dict(edits))
    nb.note(f"{sum(len(v) for v in edits.values())} metric argument(s) now use the training data")


_LOADS = re.compile(r"(^|\.)(load|load_model|load_weights|read_pickle)$")
_SAVES = re.compile(r"(^|\.)(dump|save|save_model|save_weights|to_pickle)$")


def _loads(stmt: ast.stmt) -> bool:
    return any(_LOADS.search(call_name(c)) and "json" not in call_name(c) for c in iter_calls(stmt))


def model_never_used(nb: Notebook, rng: np.random.Generator) -> None:
    """Every prediction (and reload) after fitting removed, with what reads it: the model is
    trained and never used."""
    facts = Facts.of(nb)
    fits = model_fits(facts)
    if not fits:
        raise NotApplicable("no model is fitted")
    fitted = {id(s.node) for s, _ in fits}
    first_fit = min((s.cell, s.index) for s, _ in fits)
    models = facts.ever("model", "search")
    targets = []
    for s in facts.statements:
        if (s.cell, s.index) < first_fit or id(s.node) in fitted:
            continue
        for inner in all_statements([s.node]):
            uses = any(
                method_of(c) in PREDICT_METHODS
                or (method_of(c) in METRIC_METHODS and receiver(c) in models)
                for c in iter_calls(inner)
            )
            if uses or (_loads(inner) and inner is s.node and isinstance(inner, ast.Assign)):
                targets.append((s.cell, inner))
    if not targets:
        raise NotApplicable("the fitted model is never used to predict")
    removed = remove_statements(
        nb,
        targets,
        protect=lambda s: id(s.node) in fitted,
        max_cascade=60,
        what="predictions",
    )
    nb.note(f"removed {removed} statement(s) that use the fitted model, and what read them")


def reload_wrong_model(nb: Notebook, rng: np.random.Generator) -> None:
    """The model is saved to one file and reloaded from another (a stale copy) before it
    predicts."""
    facts = Facts.of(nb)
    saved: set[str] = set()
    for s in facts.statements:
        for call in iter_calls(s.node):
            if _SAVES.search(call_name(call)):
                for n in ast.walk(call):
                    if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value:
                        saved.add(n.value)
    edits: dict[int, list[Edit]] = defaultdict(list)
    for s in facts.statements:
        for call in iter_calls(s.node):
            if not _LOADS.search(call_name(call)) or "json" in call_name(call):
                continue
            for n in ast.walk(call):
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in saved:
                    stem, dot, ext = n.value.rpartition(".")
                    wrong = (
                        f"{stem}_previous.{ext}"
                        if dot and "/" not in ext
                        else f"{n.value}_previous"
                    )
                    quote = s.code.segment(n)[:1] if s.code.segment(n)[:1] in "'\"" else '"'
                    edits[s.cell].append(s.code.replace(n, f"{quote}{wrong}{quote}"))
                    nb.note(f"cell {s.cell} reloads {wrong!r} instead of the saved {n.value!r}")
    if not edits:
        raise NotApplicable("no model saved and reloaded from the same file")
    later_use = any(predicts(s.node) for s in facts.statements)
    if not later_use:
        raise NotApplicable("the reloaded model never predicts")
    nb.edit(dict(edits))
