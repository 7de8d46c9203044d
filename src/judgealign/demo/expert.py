"""Expert labels for a built demo notebook: a score and a justification citing cells.

The scores follow the ml-notebook rubric's anchors; each rationale names the cells that hold
the evidence, so a judge's explanation can be compared with the expert's, not only its score.
Labels are a pure function of the base, the plan and the final cell layout, so a flaw planted
in one step keeps every other dimension's rationale true (cell numbers included).
"""

from __future__ import annotations

from judgealign.demo.bases import BaseSpec
from judgealign.demo.builder import PINS, Plan
from judgealign.demo.layout import CellSpec, cell_refs

DIMENSIONS = (
    "library_installation",
    "exploratory_data_analysis",
    "data_imputation",
    "feature_engineering",
    "model_training",
    "model_use",
    "metrics_evaluation",
    "mlflow_logging",
    "cell_organization",
)

Verdict = tuple[int, str]


class _Refs:
    def __init__(self, cells: list[CellSpec]) -> None:
        self.refs = cell_refs(cells)

    def __getitem__(self, tag: str) -> str:
        return f"cell {self.refs[tag]}"


def _library(b: BaseSpec, p: Plan, c: _Refs, cells: list[CellSpec]) -> Verdict:
    pkgs = ["pandas", "scikit-learn"] + ([] if p.mlflow == "none" else ["mlflow"])
    names = ", ".join(pkgs)
    if p.setup == "pinned":
        return 3, (
            f"{c['install'].capitalize()} pip-installs {names} with pinned versions and "
            f"{c['imports']} gathers every import up front; each installed package is used, so a "
            "fresh kernel runs the notebook top to bottom."
        )
    if p.setup == "unpinned":
        return 2, (
            f"Installs and imports are up front ({c['install']}, {c['imports']}), but the "
            f"`%pip install {' '.join(pkgs)}` line pins no version, although scikit-learn and "
            "pandas behaviour changes between releases."
        )
    if p.setup == "pip_mid":
        return 2, (
            f"{c['install'].capitalize()} pins pandas and scikit-learn up front, but mlflow is "
            f"installed (mlflow=={PINS['mlflow']}) and imported only in {c['pip_mid']}, "
            "mid-notebook right before tracking, so the dependencies are not visible at the top."
        )
    if p.layout == "giant":
        where = f"through {c['imports_at']}, each right before first use"
    else:
        at = [str(n) for n, cell in enumerate(cells, 1) if "imports_at" in cell.tags]
        where = f"over cells {', '.join(at[:-1])} and {at[-1]}, each next to its first use"
    return 1, (
        f"There is no import cell: the imports are scattered {where} (pandas with the CSV "
        "load, scikit-learn classes in the modelling cells), so a reader cannot see what the "
        "notebook needs."
    )


def _eda(b: BaseSpec, p: Plan, c: _Refs) -> Verdict:
    if p.eda == "full":
        return 3, (
            f"{c['load'].capitalize()} shows the shape, {c['eda']} examines the target "
            f"({b.eda_fact}), {c['rel']} relates a key feature to it, and {c['findings']} "
            "states what follows for the split, the metrics and the features."
        )
    if p.eda == "uninterpreted":
        return 2, (
            f"{c['eda'].capitalize()} prints describe() for the numeric columns, but the target "
            f"`{b.target}` is never looked at and no conclusion is drawn; no later choice refers "
            "back to it."
        )
    return 1, (
        f"There is no exploration: after the load and shape in {c['load']} the notebook goes "
        "straight to preparation, with no look at the target distribution or at any "
        "feature-target relationship."
    )


def _imputation(b: BaseSpec, p: Plan, c: _Refs) -> Verdict:
    if p.imputation == "per_column":
        return 3, (
            f"{c['missing'].capitalize()} counts missing values per column ({b.missing_fact}), "
            f"{c['missing_plan']} chooses a method per column, and {c['prep']} puts the "
            "imputers inside the pipeline, so they are fitted on the training split only."
        )
    if p.imputation == "one_strategy":
        return 2, (
            f"Missing values are never counted, and {c['prep']} applies "
            'SimpleImputer(strategy="most_frequent") to every column, numeric and categorical '
            "alike; it sits in the pipeline, so nothing leaks, but one method ignores each "
            "column's type and distribution."
        )
    if p.imputation == "before_split":
        split = "chronological" if b.kind == "forecasting" and p.training != "shuffled" else ""
        return 1, (
            f"{c['impute'].capitalize()} fits SimpleImputer (median) and mode filling on the "
            f"full df before the {split + ' ' if split else ''}split in {c['split']}: "
            "test-set statistics leak into the training data."
        )
    if p.imputation == "dropna":
        before, after = b.shape_out.split(",")[0][1:], b.dropna_out.split(",")[0][1:]
        return 1, (
            f"{c['impute'].capitalize()} drops every row with a missing value ({before} to "
            f"{after} rows) with no comment, though the gaps sit in a few columns "
            f"({b.missing_fact}) that could be imputed: rows are dropped blindly."
        )
    return 0, (
        f"{c['missing'].capitalize()} shows that no column has missing values and "
        f"{c['missing_plan']} says so; no step creates any, so imputation does not apply."
    )


def _features(b: BaseSpec, p: Plan, c: _Refs) -> Verdict:
    enc = "scaling and one-hot encoding" if b.scale else "one-hot encoding"
    if p.features == "pipeline":
        return 3, (
            f"{c['features'].capitalize()} adds `{b.derived_col}` with a stated reason and "
            f"keeps only the modelling columns (no ID, no post-outcome column); {c['prep']} puts "
            f"{enc} in one pipeline fitted on the training split."
        )
    if p.features == "no_derived":
        why = (
            f"the pattern {c['findings']} points to is never turned into a feature"
            if p.eda == "full"
            else "nothing is derived from the raw columns"
        )
        return 2, (
            f"{c['prep'].capitalize()} does the needed {enc} correctly inside the pipeline, "
            f"but no feature is created: {why}."
        )
    if p.features == "dummies":
        return 2, (
            f"{c['features'].capitalize()} one-hot encodes {', '.join(b.cat)} by hand with "
            "pd.get_dummies on the full frame before the split; no statistic leaks, but the "
            "encoding lives outside the pipeline, so inference must rebuild and realign the "
            "columns by hand."
        )
    return 1, (
        f"{c['features'].capitalize()} adds `{b.leak_col}` to the features: {b.leak_reason}, so "
        "it leaks the target and would not exist at prediction time."
    )


def _training(b: BaseSpec, p: Plan, c: _Refs) -> Verdict:
    if p.training == "cv":
        if b.kind == "forecasting":
            split, cv = "a chronological test year", "TimeSeriesSplit"
        else:
            split = "a stratified 20% test set" if b.stratify else "a 20% test set"
            cv = "5-fold CV"
        return 3, (
            f"{c['split'].capitalize()} holds out {split}; {c['train']} tunes {b.param} with "
            f"GridSearchCV ({cv}) on the training split only, compares a baseline and fixes "
            f"seeds; the test set is used once, in {c['metrics']}."
        )
    if p.training == "single":
        return 2, (
            f"{c['train'].capitalize()} fits the pipeline once with a fixed {b.param}="
            f"{b.default} on the training split from {c['split']}; the test set stays held "
            "out, but there is no cross-validation, no tuning, and no baseline in training."
        )
    if p.training == "tune_test":
        return 1, (
            f"{c['train'].capitalize()} picks {b.param} by its score on X_test/y_test, and "
            f"{c['metrics']} then reports on that same test set: the test set chose the model, "
            "so no unbiased held-out estimate remains."
        )
    return 1, (
        f"{c['split'].capitalize()} splits the monthly series with a shuffled "
        f"train_test_split and {c['train']} cross-validates with shuffled KFold: later months "
        "train a model scored on earlier ones, invalid for forecasting."
    )


def _use(b: BaseSpec, p: Plan, c: _Refs) -> Verdict:
    if p.use == "full":
        return 3, (
            f"{c['use'].capitalize()} saves the fitted pipeline with joblib, reloads it and "
            f"predicts on {b.new_csv} through the same preprocessing; predictions are shown "
            f"and {c['use_note']} reads them in the task's terms."
        )
    if p.use == "none":
        return 2, (
            f"The model predicts only inside the metric computation in {c['metrics']}; it is "
            f"never applied to {b.new_csv} as the task asks, never saved, and no prediction "
            "is shown or inspected."
        )
    if p.use == "train_only":
        return 1, (
            f"{c['use'].capitalize()}, presented as using the model, predicts on "
            f"X_train.head(3), rows the model was trained on; the new data in {b.new_csv} is "
            "never scored."
        )
    return 1, (
        f"{c['use'].capitalize()} calls the bare estimator model[-1] on raw new[NUM] with "
        "fillna(0), bypassing the fitted preprocessing and dropping the categorical columns: "
        "the predictions on new data are invalid."
    )


def _metrics(b: BaseSpec, p: Plan, c: _Refs) -> Verdict:
    if p.metrics == "full":
        return 3, (
            f"{c['metrics'].capitalize()} computes {b.metric_fact} on the held-out test set for "
            f"the model and the baseline, and {c['interpretation']} explains the gap and where "
            "the model fails."
        )
    if p.metrics == "no_baseline":
        return 2, (
            f"{c['metrics'].capitalize()} reports {b.metric_fact} on the held-out test set, but "
            "never beside the baseline and with no word on what the numbers mean for the task."
        )
    return 1, (
        f"{c['metrics'].capitalize()} evaluates on X_train/y_train: {b.metric_fact} on the "
        "training data overstate quality, and no held-out score is reported."
    )


def _mlflow(b: BaseSpec, p: Plan, c: _Refs) -> Verdict:
    if p.mlflow == "none":
        return 1, (
            "MLflow never appears: no experiment, run, parameter, metric or model is tracked, "
            "although the task asks for tracking."
        )
    if p.mlflow == "metrics_only":
        return 2, (
            f"{c['mlflow'].capitalize()} logs the test metrics in an unnamed run in the default "
            "experiment; no parameters and no model are logged, so the run cannot be "
            "reproduced or compared."
        )
    if p.metrics == "on_train":
        return 2, (
            f"{c['mlflow'].capitalize()} sets the '{b.experiment}' experiment, names the run and "
            "logs parameters and the model, but the metrics it logs are the training-set "
            f"scores of {c['metrics']}, so no held-out quality is recorded."
        )
    return 3, (
        f"{c['mlflow'].capitalize()} sets the '{b.experiment}' experiment, opens a named run "
        f"('{b.run_name}') in a context manager and logs the parameters, the held-out metrics "
        "and the fitted pipeline with an input example."
    )


def _cells(p: Plan, c: _Refs, cells: list[CellSpec]) -> Verdict:
    code = [x for x in cells if x.kind == "code"]
    if p.layout == "giant":
        lines = len(code[-1].source.splitlines())
        return 1, (
            f"After the install cell, everything sits in one giant code cell ({lines} lines): "
            "loading, exploration, training, evaluation and the rest run together with markdown "
            "reduced to comments, so it cannot be read or rerun step by step."
        )
    if p.layout == "no_markdown":
        return 2, (
            f"There is no markdown cell: headings and explanations survive only as comments "
            f"atop the {len(code)} code cells. Cells are short and run in order, but the "
            "notebook has no visible section structure."
        )
    heads = sum(1 for x in cells if x.kind == "markdown" and x.source.startswith("#"))
    return 3, (
        f"{heads} markdown headings follow the workflow (data, preparation, training, "
        f"evaluation and onward), explanations sit beside the choices, and the {len(code)} "
        "short code cells each do one thing, executed in order."
    )


def expert_labels(b: BaseSpec, p: Plan, cells: list[CellSpec]) -> dict[str, Verdict]:
    """Score and rationale per rubric dimension for the notebook built from ``b`` and ``p``.

    >>> from judgealign.demo.bases import BASES
    >>> from judgealign.demo.builder import build_cells
    >>> b, p = BASES["house_prices"], Plan(imputation="before_split")
    >>> expert_labels(b, p, build_cells(b, p))["data_imputation"][0]
    1
    """
    c = _Refs(cells)
    return {
        "library_installation": _library(b, p, c, cells),
        "exploratory_data_analysis": _eda(b, p, c),
        "data_imputation": _imputation(b, p, c),
        "feature_engineering": _features(b, p, c),
        "model_training": _training(b, p, c),
        "model_use": _use(b, p, c),
        "metrics_evaluation": _metrics(b, p, c),
        "mlflow_logging": _mlflow(b, p, c),
        "cell_organization": _cells(p, c, cells),
    }
