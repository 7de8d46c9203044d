"""What probes need to know about a notebook's code: its train/test splits, what each
variable holds (an imputer, a scaler, a model), metric calls and install lines.

Everything is read from the AST of the cells in order; nothing is executed. The recognisers
are deliberately conservative: a probe that cannot tell what a statement does does not apply,
rather than guess and plant something other than the flaw it names.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, field

from judgealign.stress.code import (
    CellCode,
    bound_names,
    call_name,
    iter_calls,
    method_of,
    rebinds,
    receiver,
)
from judgealign.stress.notebook import Notebook, Statement

IMPUTER = re.compile(r"(Imputer|MissingIndicator)$")
SCALER = re.compile(
    r"(Scaler|Encoder|Discreti[sz]er|PowerTransformer|QuantileTransformer|BoxCoxTransformer|"
    r"YeoJohnsonTransformer|Winsorizer|OutlierTrimmer|ArbitraryOutlierCapper)$"
)
MODEL = re.compile(
    r"(Classifier|Regressor|Regression|Perceptron|SVC|SVR|NB|Boost\w*|LGBM\w*|XGB\w*|CatBoost\w*|"
    r"KNeighbors\w*|Sequential|Model|ARIMA|Prophet|Lasso|Ridge|ElasticNet|Forest\w*)$"
)
SEARCH = re.compile(r"^(GridSearchCV|RandomizedSearchCV|HalvingGridSearchCV|"
                    r"HalvingRandomSearchCV|BayesSearchCV)$")  # fmt: skip
CV_CALLS = frozenset({"cross_val_score", "cross_validate", "cross_val_predict", "learning_curve",
                      "validation_curve", "permutation_test_score"})  # fmt: skip
CV_SPLITTERS = re.compile(r"^(Repeated)?(Stratified|Group|StratifiedGroup)?KFold$|"
                          r"^TimeSeriesSplit$|^ShuffleSplit$|^LeaveOneOut$")  # fmt: skip
METRICS = frozenset(
    [
        "accuracy_score",
        "balanced_accuracy_score",
        "precision_score",
        "recall_score",
        "f1_score",
        "fbeta_score",
        "roc_auc_score",
        "average_precision_score",
        "log_loss",
        "classification_report",
        "confusion_matrix",
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "median_absolute_error",
        "r2_score",
        "root_mean_squared_error",
        "explained_variance_score",
        "matthews_corrcoef",
        "cohen_kappa_score",
        "hamming_loss",
        "jaccard_score",
        "mean_squared_log_error",
        "brier_score_loss",
        "precision_recall_curve",
        "roc_curve",
        "top_k_accuracy_score",
        "max_error",
        "mean_pinball_loss",
        "MAPE",
        "sMAPE",
        "smape",
        "mape",
        "rmse",
        "mae",
        "mse",
        "mase",
    ]
)
METRIC_METHODS = frozenset({"score", "evaluate"})
METRIC_DISPLAYS = frozenset({"from_predictions", "from_estimator"})
PREDICT_METHODS = frozenset(
    {"predict", "predict_proba", "predict_log_proba", "decision_function", "forecast"}
)
FIT_METHODS = frozenset({"fit", "fit_transform", "fit_resample", "partial_fit"})
SEED_CALLS = frozenset({"np.random.seed", "numpy.random.seed", "random.seed", "torch.manual_seed",
                        "tf.random.set_seed", "tf.set_random_seed", "keras.utils.set_random_seed",
                        "tf.keras.utils.set_random_seed", "set_seed", "seed_everything",
                        "torch.cuda.manual_seed_all", "torch.cuda.manual_seed",
                        "pl.seed_everything"})  # fmt: skip
SEED_KEYWORDS = frozenset({"random_state", "seed", "random_seed"})


def short(name: str) -> str:
    """The last part of a dotted name."""
    return name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class SplitPart:
    train: str
    test: str
    source: ast.expr  # the full-data expression this pair was split from


@dataclass(frozen=True)
class Split:
    """``a_tr, a_te, b_tr, b_te = train_test_split(A, B, ...)`` at top level."""

    stmt: Statement
    call: ast.Call
    parts: tuple[SplitPart, ...]

    def part(self, name: str) -> SplitPart | None:
        return next((p for p in self.parts if name in (p.train, p.test)), None)


def find_splits(nb: Notebook) -> list[Split]:
    out: list[Split] = []
    for s in nb.statements():
        node = s.node
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not (isinstance(value, ast.Call) and short(call_name(value)) == "train_test_split"):
            continue
        if not isinstance(target, ast.Tuple | ast.List):
            continue
        arrays = [a for a in value.args if not isinstance(a, ast.Starred)]
        names = [e.id if isinstance(e, ast.Name) else None for e in target.elts]
        if len(names) != 2 * len(arrays) or None in names:
            continue
        parts = tuple(
            SplitPart(str(names[2 * i]), str(names[2 * i + 1]), arr) for i, arr in enumerate(arrays)
        )
        out.append(Split(s, value, parts))
    return out


def split_before(splits: list[Split], s: Statement, name: str) -> Split | None:
    """The last split before statement ``s`` (notebook order) that binds ``name``."""
    found = None
    for sp in splits:
        if (sp.stmt.cell, sp.stmt.index) < (s.cell, s.index) and sp.part(name) is not None:
            found = sp
    return found


def _pairs_by_name(names: set[str]) -> dict[str, str]:
    """``X_test -> X_train``, ``test_df -> train_df``, ``y_val -> y_train`` among ``names``."""
    out: dict[str, str] = {}
    for name in names:
        for held in ("test", "valid", "val", "Test", "TEST"):
            for train in ("train", "Train", "TRAIN"):
                if held not in name:
                    continue
                candidate = re.sub(rf"(?<![A-Za-z]){held}(?![a-z])", train, name)
                if candidate != name and candidate in names:
                    out[name] = candidate
    return out


def _order(s: Statement) -> tuple[int, int]:
    return (s.cell, s.index)


@dataclass
class Facts:
    """Per-notebook facts the probes share (built once per probe application).

    ``bindings`` records, per variable, every statement that binds it and what it then holds
    (``{"model"}``, ``{"imputer"}``, ... or nothing known): notebooks reuse names (``model``
    is a forest in one section and a network in the next), so what a variable is depends on
    where it is read (``kind_of(name, at=statement)``).
    """

    nb: Notebook
    statements: list[Statement] = field(default_factory=list)
    splits: list[Split] = field(default_factory=list)
    bindings: dict[str, list[tuple[Statement, set[str]]]] = field(default_factory=dict)
    held_out: dict[str, str] = field(default_factory=dict)  # test name -> train name
    bound_at: dict[str, list[Statement]] = field(default_factory=dict)

    @classmethod
    def of(cls, nb: Notebook) -> Facts:
        facts = cls(nb=nb, statements=nb.statements())
        facts.splits = find_splits(nb)
        for s in facts.statements:
            node = s.node
            made: dict[str, set[str]] = {}
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    made[target.id] = classify(node.value)
            for name in bound_names(node):
                facts.bound_at.setdefault(name, []).append(s)
                if rebinds(node, name):
                    facts.bindings.setdefault(name, []).append((s, made.get(name, set())))
        facts.held_out = _pairs_by_name(set(facts.bound_at))
        for sp in facts.splits:
            for p in sp.parts:
                facts.held_out[p.test] = p.train
        return facts

    def _binding(self, name: str | None, at: Statement | None) -> tuple[Statement, set[str]] | None:
        found = None
        for b in self.bindings.get(name or "", []):
            if at is None or _order(b[0]) < _order(at):
                found = b
        return found

    def kind_of(self, name: str | None, at: Statement | None = None) -> set[str]:
        """What ``name`` holds where ``at`` reads it (at the end of the notebook: None)."""
        b = self._binding(name, at)
        return b[1] if b else set()

    def constructor(self, name: str | None, at: Statement | None = None) -> Statement | None:
        """The statement that made what ``name`` holds at ``at``, when it is a known kind."""
        b = self._binding(name, at)
        return b[0] if b and b[1] else None

    def ever(self, *kinds: str) -> set[str]:
        """Variables that hold one of ``kinds`` somewhere in the notebook."""
        return {n for n, bs in self.bindings.items() if any(k & set(kinds) for _, k in bs)}

    def made(self) -> list[tuple[str, Statement, set[str]]]:
        """Every binding to a known kind: (variable, statement, kinds)."""
        return [(n, s, k) for n, bs in self.bindings.items() for s, k in bs if k]

    def bound_before(self, name: str, s: Statement) -> bool:
        return any(_order(b) < _order(s) for b in self.bound_at.get(name, []))


def classify(value: ast.AST) -> set[str]:
    """What a constructor expression makes: {"imputer", "scaler", "model", "search"}.

    The outermost known class decides (``IterativeImputer(estimator=BayesianRidge())`` is an
    imputer, not a model); containers and wrappers (``Pipeline``, ``ColumnTransformer``,
    ``SklearnTransformerWrapper``) are what their steps are.

    >>> sorted(classify(ast.parse("Pipeline([('s', StandardScaler()), ('m', Ridge())])").body[0]
    ...                         .value))
    ['model', 'scaler']
    >>> classify(ast.parse("IterativeImputer(estimator=BayesianRidge())").body[0].value)
    {'imputer'}
    """
    if isinstance(value, ast.List | ast.Tuple | ast.Set):
        return set().union(*(classify(e) for e in value.elts))
    if not isinstance(value, ast.Call):
        return set()
    name = short(call_name(value))
    if IMPUTER.search(name):
        return {"imputer"}
    if SCALER.search(name):
        return {"scaler"}
    if SEARCH.match(name):
        return {"search"}
    if MODEL.search(name) and not name.startswith("Dummy"):
        return {"model"}
    # ``RandomForestClassifier(...).fit(X, y)``, ``Pipeline([...])``, wrappers: look inside.
    inner: list[ast.AST] = [*value.args, *(k.value for k in value.keywords)]
    if isinstance(value.func, ast.Attribute):
        inner.append(value.func.value)
    return set().union(*(classify(v) for v in inner))


def is_metric_call(call: ast.Call) -> bool:
    name = call_name(call)
    last = short(name)
    if last in METRICS:
        return True
    return last in METRIC_DISPLAYS and "Display" in name


def metric_functions(nb: Notebook) -> set[str]:
    """User functions whose body computes a metric (``def evaluate(est, X, y): ...``)."""
    out: set[str] = set()
    for s in nb.statements():
        if isinstance(s.node, ast.FunctionDef) and any(
            is_metric_call(c) for c in iter_calls(s.node)
        ):
            out.add(s.node.name)
    return out


def is_fit_call(call: ast.Call) -> bool:
    return method_of(call) in FIT_METHODS


def model_fits(facts: Facts) -> list[tuple[Statement, ast.Call]]:
    """Top-level statements that fit a model (not a transformer)."""
    out = []
    for s in facts.statements:
        for call in iter_calls(s.node):
            if not is_fit_call(call):
                continue
            kinds = facts.kind_of(receiver(call), at=s) | (
                classify(call.func.value) if isinstance(call.func, ast.Attribute) else set()
            )
            if kinds & {"model", "search"} or (
                short(call_name(call)) == "train" and "lgb" in call_name(call)
            ):
                out.append((s, call))
    return out


def predicts(node: ast.AST) -> bool:
    return any(method_of(c) in PREDICT_METHODS for c in iter_calls(node))


# -- install lines -------------------------------------------------------------------------

_PIP = re.compile(
    r"^(?P<indent>[ \t]*)(?P<cmd>[!%]\s*(?:python\s+-m\s+)?pip3?\s+install\b)(?P<args>.*)$"
)


@dataclass(frozen=True)
class PipLine:
    """One ``!pip install`` / ``%pip install`` line (continuations not supported)."""

    cell: int
    lineno: int  # 1-based, in the cell
    indent: str
    command: str
    args: tuple[str, ...]

    @property
    def packages(self) -> list[str]:
        return [a for a in self.args if not a.startswith("-")]

    def render(self, args: list[str]) -> str:
        return f"{self.indent}{self.command} {' '.join(shlex.quote(a) for a in args)}".rstrip()


def pip_lines(nb: Notebook) -> list[PipLine]:
    out = []
    for i in nb.code_cells():
        code = nb.code(i)
        for n, line in enumerate(code.text.split("\n"), 1):
            found = _PIP.match(line)
            if not found or line.rstrip().endswith("\\"):
                continue
            try:
                args = shlex.split(found.group("args"), comments=True)
            except ValueError:
                continue
            out.append(PipLine(i, n, found.group("indent"), found.group("cmd"), tuple(args)))
    return out


def package_name(requirement: str) -> str:
    """``scikit-learn==1.5`` -> ``scikit-learn``; ``pandas[pyarrow]>=2`` -> ``pandas``."""
    return re.split(r"[\[<>=!~; @]", requirement, maxsplit=1)[0]


def pinned(requirement: str) -> bool:
    return bool(re.search(r"(==|>=|<=|~=|!=|<|>)", requirement))


def rename_base(code: CellCode, node: ast.expr, new: str) -> str:
    """``node``'s source with its root variable replaced by ``new`` (parenthesised when
    ``new`` is not a simple primary expression): ``X_train[cols]`` -> ``data[cols]``."""
    root = node
    while isinstance(root, ast.Subscript | ast.Attribute):
        root = root.value
    text = code.segment(node)
    if root is node:
        return new
    start, _ = code.span(node)
    r_start, r_end = code.span(root)
    return text[: r_start - start] + new + text[r_end - start :]


def primary(code: CellCode, node: ast.expr) -> str:
    """``node``'s source, parenthesised unless subscripting or calling it needs no brackets."""
    text = code.segment(node)
    if isinstance(node, ast.Name | ast.Attribute | ast.Subscript | ast.Call | ast.Constant):
        return text
    return f"({text})"
