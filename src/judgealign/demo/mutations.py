"""Plant known flaws in good notebooks: composable mutations with expert labels.

Each :class:`Mutation` changes one workflow step of a :class:`DemoNotebook` and so plants one
flaw whose score on its rubric dimension is known (``Mutation.dimension``/``Mutation.score``).
Labels are recomputed by :func:`judgealign.demo.expert.expert_labels` after every change, so
rationales cite the right cells however mutations compose. One side effect is deliberate and
comes out of that recomputation: logging training-set metrics lowers MLflow logging, since the
run then records no held-out quality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import nbformat
import numpy as np

from judgealign.demo.bases import BASES, BaseSpec, TaskKind
from judgealign.demo.builder import Plan, build_cells
from judgealign.demo.expert import Verdict, expert_labels
from judgealign.demo.layout import CellSpec, to_notebook
from judgealign.errors import ConfigError

ALL_KINDS: frozenset[TaskKind] = frozenset({"classification", "regression", "forecasting"})


@dataclass(frozen=True)
class Mutation:
    """One planted flaw: ``step`` becomes ``variant``; its ``dimension`` then scores ``score``."""

    name: str
    dimension: str
    score: int
    step: str
    variant: str
    summary: str
    conflicts: frozenset[str] = frozenset()
    needs: tuple[str, frozenset[str]] | None = None
    kinds: frozenset[TaskKind] = ALL_KINDS

    def apply(self, nb: DemoNotebook) -> tuple[DemoNotebook, dict[str, Verdict]]:
        """The mutated notebook and the labels that changed (always incl. ``dimension``).

        >>> nb, changed = MUTATIONS["no_mlflow"].apply(DemoNotebook("house_prices"))
        >>> changed["mlflow_logging"][0]
        1
        """
        before = nb.labels()
        change: dict[str, Any] = {self.step: self.variant}
        after_nb = replace(
            nb,
            plan=replace(nb.plan, **change),
            mutations=(*nb.mutations, self.name),
        )
        after = after_nb.labels()
        changed = {d: v for d, v in after.items() if v != before[d] or d == self.dimension}
        return after_nb, changed


def _m(
    name: str, dim: str, score: int, step: str, variant: str, summary: str, **kw: Any
) -> Mutation:
    return Mutation(name, dim, score, step, variant, summary, **kw)


_NO_FULL_USE = ("use", frozenset({"none", "train_only"}))

MUTATIONS: dict[str, Mutation] = {
    m.name: m
    for m in (
        _m("unpinned_installs", "library_installation", 2, "setup", "unpinned",
           "pip install without version pins"),
        _m("pip_install_mid_notebook", "library_installation", 2, "setup", "pip_mid",
           "mlflow installed and imported mid-notebook", conflicts=frozenset({"no_mlflow"})),
        _m("scattered_imports", "library_installation", 1, "setup", "scattered",
           "imports spread over the notebook next to first use"),
        _m("uninterpreted_eda", "exploratory_data_analysis", 2, "eda", "uninterpreted",
           "describe() only, no target look, no findings"),
        _m("no_eda", "exploratory_data_analysis", 1, "eda", "none", "no exploration at all"),
        _m("one_imputer_for_all", "data_imputation", 2, "imputation", "one_strategy",
           "most-frequent imputer on every column, missingness never checked"),
        _m("impute_before_split", "data_imputation", 1, "imputation", "before_split",
           "imputer fitted on the full frame before the split (leakage)"),
        _m("drop_all_missing_rows", "data_imputation", 1, "imputation", "dropna",
           "dropna on the whole frame without comment"),
        _m("no_missing_values", "data_imputation", 0, "imputation", "none_needed",
           "the data has no missing values (N/A)"),
        _m("no_derived_features", "feature_engineering", 2, "features", "no_derived",
           "encoding only, no derived feature"),
        _m("get_dummies_before_split", "feature_engineering", 2, "features", "dummies",
           "pd.get_dummies on the full frame, outside the pipeline",
           conflicts=frozenset({"one_imputer_for_all"})),
        _m("target_leak_feature", "feature_engineering", 1, "features", "target_leak",
           "a feature computed from the target or post-outcome data", needs=_NO_FULL_USE),
        _m("no_cv_single_fit", "model_training", 2, "training", "single",
           "one fit with fixed hyperparameters, no CV or tuning"),
        _m("tune_on_test_set", "model_training", 1, "training", "tune_test",
           "hyperparameter picked by test-set score"),
        _m("shuffled_time_split", "model_training", 1, "training", "shuffled",
           "shuffled split and KFold on a time series", kinds=frozenset({"forecasting"})),
        _m("no_inference_step", "model_use", 2, "use", "none",
           "no prediction beyond the metric; no save/load",
           conflicts=frozenset({"metrics_on_training_set"})),
        _m("predict_on_train_only", "model_use", 1, "use", "train_only",
           "'inference' on training rows"),
        _m("inference_skips_preprocessing", "model_use", 1, "use", "skip_prep",
           "bare estimator on raw new data, preprocessing bypassed"),
        _m("metrics_without_baseline", "metrics_evaluation", 2, "metrics", "no_baseline",
           "held-out metrics without baseline or interpretation"),
        _m("metrics_on_training_set", "metrics_evaluation", 1, "metrics", "on_train",
           "metrics computed on the training data",
           conflicts=frozenset({"no_inference_step", "mlflow_metrics_only"})),
        _m("mlflow_metrics_only", "mlflow_logging", 2, "mlflow", "metrics_only",
           "metrics logged in an unnamed default-experiment run only",
           conflicts=frozenset({"metrics_on_training_set"})),
        _m("no_mlflow", "mlflow_logging", 1, "mlflow", "none", "no MLflow at all",
           conflicts=frozenset({"pip_install_mid_notebook"})),
        _m("no_markdown", "cell_organization", 2, "layout", "no_markdown",
           "markdown folded into code comments"),
        _m("one_giant_cell", "cell_organization", 1, "layout", "giant",
           "everything after the install in one code cell"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class DemoNotebook:
    """A base notebook plus the mutations applied to it, in order.

    >>> nb = DemoNotebook("flight_delay")
    >>> nb.labels()["model_training"][0]
    3
    """

    base: str
    plan: Plan = field(default_factory=Plan)
    mutations: tuple[str, ...] = ()

    @property
    def spec(self) -> BaseSpec:
        return BASES[self.base]

    def cells(self) -> list[CellSpec]:
        return build_cells(self.spec, self.plan)

    def notebook(self) -> Any:
        """The nbformat v4 notebook (no mutation names in it: the judge must not see them)."""
        return to_notebook(self.cells())

    def notebook_json(self) -> str:
        writes: Any = nbformat.writes
        return str(writes(self.notebook(), version=4)) + "\n"

    def labels(self) -> dict[str, Verdict]:
        return expert_labels(self.spec, self.plan, self.cells())


def compatible(base: str, names: Sequence[str]) -> bool:
    """Whether ``names`` can be planted together in ``base`` (one flaw per step, no conflicts).

    >>> compatible("monthly_sales", ["shuffled_time_split", "no_mlflow"])
    True
    >>> compatible("flight_delay", ["no_mlflow", "mlflow_metrics_only"])
    False
    """
    muts = [MUTATIONS[n] for n in names]
    steps = [m.step for m in muts]
    if len(set(steps)) != len(steps) or len(set(names)) != len(names):
        return False
    kind = BASES[base].kind
    if any(kind not in m.kinds or m.conflicts & set(names) for m in muts):
        return False
    steps_set: dict[str, Any] = {m.step: m.variant for m in muts}
    plan = replace(Plan(), **steps_set)
    return all(m.needs is None or getattr(plan, m.needs[0]) in m.needs[1] for m in muts)


def mutate(base: str, names: Sequence[str]) -> DemoNotebook:
    """Apply ``names`` in order to a base notebook; unknown or incompatible names are errors.

    >>> mutate("customer_churn", ["no_eda"]).labels()["exploratory_data_analysis"][0]
    1
    """
    if base not in BASES:
        raise ConfigError(f"demo base {base!r} is unknown; use one of {', '.join(BASES)}")
    unknown = [n for n in names if n not in MUTATIONS]
    if unknown:
        raise ConfigError(f"demo mutation {unknown[0]!r} is unknown; see judgealign.demo.MUTATIONS")
    if not compatible(base, names):
        raise ConfigError(f"demo mutations {', '.join(names)} cannot be combined in {base}")
    nb = DemoNotebook(base)
    for n in names:
        nb, _ = MUTATIONS[n].apply(nb)
    return nb


def generate_variants(
    seed: int, n: int, bases: Sequence[str] | None = None, max_mutations: int = 3
) -> list[DemoNotebook]:
    """``n`` notebooks, each a base with 0..``max_mutations`` compatible flaws; deterministic.

    A stress test for any judge: every label is known by construction.

    >>> [v.mutations for v in generate_variants(0, 2)] == [
    ...     v.mutations for v in generate_variants(0, 2)]
    True
    """
    rng = np.random.default_rng(seed)
    names = sorted(bases or BASES)
    out: list[DemoNotebook] = []
    for _ in range(n):
        base = names[int(rng.integers(len(names)))]
        want = int(rng.integers(max_mutations + 1))
        chosen: list[str] = []
        for idx in rng.permutation(len(MUTATIONS)):
            if len(chosen) == want:
                break
            candidate = list(MUTATIONS)[int(idx)]
            if compatible(base, [*chosen, candidate]):
                chosen.append(candidate)
        out.append(mutate(base, chosen))
    return out
