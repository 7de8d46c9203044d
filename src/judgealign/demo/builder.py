"""Turn a base spec and a plan (which variant of each workflow step) into notebook cells.

Cells carry tags naming the workflow step they hold, so expert rationales can cite "cell N"
after the layout (giant cell, no markdown) has moved things around.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from judgealign.demo.bases import BaseSpec
from judgealign.demo.layout import CellSpec, comments_for_markdown, giant, place_imports

PINS = {"pandas": "2.2.2", "scikit-learn": "1.5.0", "mlflow": "2.14.1"}


@dataclass(frozen=True)
class Plan:
    """Which variant each workflow step uses; the defaults make the good base notebook."""

    setup: Literal["pinned", "unpinned", "pip_mid", "scattered"] = "pinned"
    eda: Literal["full", "uninterpreted", "none"] = "full"
    imputation: Literal["per_column", "one_strategy", "before_split", "dropna", "none_needed"] = (
        "per_column"
    )
    features: Literal["pipeline", "no_derived", "dummies", "target_leak"] = "pipeline"
    training: Literal["cv", "single", "tune_test", "shuffled"] = "cv"
    metrics: Literal["full", "no_baseline", "on_train"] = "full"
    use: Literal["full", "none", "train_only", "skip_prep"] = "full"
    mlflow: Literal["full", "metrics_only", "none"] = "full"
    layout: Literal["structured", "no_markdown", "giant"] = "structured"


def _md(text: str, *tags: str) -> CellSpec:
    return CellSpec("markdown", text, tags=tags)


def _code(src: str, out: str = "", *tags: str, result: bool = False, imp: str = "") -> CellSpec:
    imports = tuple(line for line in imp.splitlines() if line)
    return CellSpec("code", src, out, result, tags, imports)


def _lst(cols: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{c}"' for c in cols) + "]"


def _features(b: BaseSpec, p: Plan) -> list[CellSpec]:
    num = b.num
    lines = []
    if p.features != "no_derived":
        lines.append(b.derived.format(df="df"))
        num = (*num, b.derived_col)
    if p.features == "target_leak":
        lines.append(b.leak)
        num = (*num, b.leak_col)
    lines += [f"NUM, CAT = {_lst(num)}, {_lst(b.cat)}"]
    if p.features == "dummies":
        lines.append("X = pd.concat([df[NUM], pd.get_dummies(df[CAT], dummy_na=True)], axis=1)")
    else:
        lines.append("X = df[NUM + CAT]")
    lines.append(f'y = df["{b.target}"]')
    imp = ""
    if b.kind == "forecasting" and p.training != "shuffled":
        lines += [
            'cut = df["month"] < "2023-01-01"  # 2023 is the test year',
            "X_train, X_test, y_train, y_test = X[cut], X[~cut], y[cut], y[~cut]",
        ]
    else:
        strat = "stratify=y, " if b.stratify else ""
        lines += [
            "X_train, X_test, y_train, y_test = train_test_split(",
            f"    X, y, test_size=0.2, {strat}random_state=42)",
        ]
        imp = "from sklearn.model_selection import train_test_split"
    reason = f" {b.derived_reason}" if p.features != "no_derived" else ""
    chrono = b.kind == "forecasting" and p.training != "shuffled"
    split = "chronological split" if chrono else "hold out 20% for the test"
    return [
        _md(f"## Features and split\n{split.capitalize()}.{reason}", "features_md"),
        _code("\n".join(lines), "", "features", "split", imp=imp),
    ]


def _prep(b: BaseSpec, p: Plan) -> CellSpec:
    imputes = p.imputation in ("per_column", "one_strategy")
    one = 'SimpleImputer(strategy="most_frequent")'
    num_imp = one if p.imputation == "one_strategy" else b.num_imputer
    cat_imp = one if p.imputation == "one_strategy" else b.cat_imputer
    steps = [s for s in (num_imp if imputes else "", "StandardScaler()" if b.scale else "") if s]
    num = (
        f"make_pipeline({', '.join(steps)})" if len(steps) > 1 else (steps or ['"passthrough"'])[0]
    )
    enc = 'OneHotEncoder(handle_unknown="ignore")'
    cat = f"make_pipeline({cat_imp}, {enc})" if imputes else enc
    if p.features == "dummies":
        prep = f'ColumnTransformer(\n    [("num", {num}, NUM)], remainder="passthrough")'
    else:
        prep = f'ColumnTransformer([\n    ("num", {num}, NUM),\n    ("cat", {cat}, CAT),\n])'
    src = f'prep = {prep}\npipe = Pipeline([("prep", prep), ("model", {b.model_expr})])'
    imp = ["from sklearn.compose import ColumnTransformer", "from sklearn.pipeline import Pipeline"]
    if "make_pipeline" in src:
        imp.append("from sklearn.pipeline import make_pipeline")
    if imputes:
        imp.append("from sklearn.impute import SimpleImputer")
    if b.scale:
        imp.append("from sklearn.preprocessing import StandardScaler")
    if p.features != "dummies":
        imp.append("from sklearn.preprocessing import OneHotEncoder")
    imp.append(b.model_import)
    return _code(src, "", "prep", imp="\n".join(imp))


def _train(b: BaseSpec, p: Plan) -> CellSpec:
    grid = f'{{"{b.param}": {b.values}}}'
    imp = [b.baseline_import]
    if p.training in ("cv", "shuffled"):
        cv = "5"
        if p.training == "shuffled":
            cv = "KFold(5, shuffle=True, random_state=42)"
            imp.append("from sklearn.model_selection import KFold")
        elif b.kind == "forecasting":
            cv = "TimeSeriesSplit(n_splits=4)"
            imp.append("from sklearn.model_selection import TimeSeriesSplit")
        src = (
            f'search = GridSearchCV(pipe, {grid}, cv={cv}, scoring="{b.scoring}")\n'
            "search.fit(X_train, y_train)\n"
            "model, params = search.best_estimator_, search.best_params_\n"
            "print(params, round(search.best_score_, 3))\n"
            f"{b.baseline_code}\n{b.baseline_cv}"
        )
        imp.append("from sklearn.model_selection import GridSearchCV")
        imp.append(
            "from sklearn.model_selection import cross_val_score"
            if "cross_val_score" in b.baseline_cv
            else b.eval_import
        )
        return _code(src, b.cv_out, "train", "baseline", imp="\n".join(imp))
    if p.training == "single":
        src = (
            f'params = {{"{b.param}": {b.default}}}\n'
            "model = pipe.set_params(**params).fit(X_train, y_train)\n"
            f"{b.baseline_code}"
        )
        return _code(src, "", "train", "baseline", imp="\n".join(imp))
    src = (
        "by_value = {}\n"
        f"for v in {b.values}:\n"
        f"    pipe.set_params({b.param}=v).fit(X_train, y_train)\n"
        f"    by_value[v] = {b.tune_metric}\n"
        "print(by_value)\n"
        f'params = {{"{b.param}": {b.better}(by_value, key=by_value.get)}}\n'
        "model = pipe.set_params(**params).fit(X_train, y_train)\n"
        f"{b.baseline_code}"
    )
    imp.append(b.eval_import)
    return _code(src, b.tune_out, "train", "baseline", imp="\n".join(imp))


def _metrics(b: BaseSpec, p: Plan) -> list[CellSpec]:
    if p.metrics == "on_train":
        src = f"{b.eval_code}\nscores = evaluate(model, X_train, y_train)\nprint(scores)"
        out = b.train_out
    else:
        src = f'{b.eval_code}\nscores = evaluate(model, X_test, y_test)\nprint("model   ", scores)'
        out = f"model    {b.test_out}"
        if p.metrics == "full":
            src += '\nprint("baseline", evaluate(baseline, X_test, y_test))'
            out += f"\nbaseline {b.base_out}"
    cells = [_md("## Evaluation", "metrics_md"), _code(src, out, "metrics", imp=b.eval_import)]
    if p.metrics == "full":
        cells.append(_md(b.interpretation, "interpretation"))
    return cells


def _use(b: BaseSpec, p: Plan) -> list[CellSpec]:
    if p.use == "none":
        return []
    head = f'new[["{b.id_col}", "pred"]].head(3)'
    new = f'new = pd.read_csv("{b.new_csv}"{b.parse_dates})\n'
    if p.features != "no_derived":
        new += b.derived.format(df="new") + "\n"
    if p.use == "train_only":
        return [
            _md("## Using the model\nPredictions for a few rows:", "use_md"),
            _code("model.predict(X_train.head(3))", b.train_pred_out, "use", result=True),
        ]
    if p.use == "skip_prep":
        pred = b.pred_expr.format(x="new[NUM].fillna(0)").replace("loaded", "model[-1]")
        src = f'{new}new["pred"] = {pred}\n{head}'
        return [
            _md("## Using the model", "use_md"),
            _code(src, b.use_out, "use", result=True),
        ]
    path = f"models/{b.name}.joblib"
    x = "new[NUM + CAT]"
    if p.features == "dummies":
        new += (
            "new_X = pd.concat([new[NUM], pd.get_dummies(new[CAT], dummy_na=True)], axis=1)"
            ".reindex(columns=X.columns, fill_value=0)\n"
        )
        x = "new_X"
    src = (
        f'joblib.dump(model, "{path}")\nloaded = joblib.load("{path}")\n'
        f'{new}new["pred"] = {b.pred_expr.format(x=x)}\n{head}'
    )
    return [
        _md("## Using the model\nSave, reload and predict on new data.", "use_md"),
        _code(src, b.use_out, "use", result=True, imp="import joblib"),
        _md(b.use_note, "use_note"),
    ]


def _mlflow(b: BaseSpec, p: Plan) -> list[CellSpec]:
    if p.mlflow == "none":
        return []
    if p.mlflow == "metrics_only":
        src, imp = "with mlflow.start_run():\n    mlflow.log_metrics(scores)", "import mlflow"
    else:
        src = (
            f'mlflow.set_experiment("{b.experiment}")\n'
            f'with mlflow.start_run(run_name="{b.run_name}"):\n'
            "    mlflow.log_params(params)\n    mlflow.log_metrics(scores)\n"
            '    mlflow.sklearn.log_model(model, "model", input_example=X_train.head(3))'
        )
        imp = "import mlflow\nimport mlflow.sklearn"
    cells = [_md("## Experiment tracking", "mlflow_md")]
    if p.setup == "pip_mid":
        cells.append(_code(f"%pip install -q mlflow=={PINS['mlflow']}\n{imp}", "", "pip_mid"))
        imp = ""
    return [*cells, _code(src, "", "mlflow", imp=imp)]


def _missing(b: BaseSpec, p: Plan) -> list[CellSpec]:
    check = "df.isna().sum()[lambda s: s > 0]"
    if p.imputation == "one_strategy":
        return [_md("## Missing values\nGaps are filled in the pipeline.", "missing_md")]
    if p.imputation == "none_needed":
        return [
            _md("## Missing values", "missing_md"),
            _code(check, "Series([], dtype: int64)", "missing", result=True),
            _md("No column has missing values, so the pipeline needs no imputer.", "missing_plan"),
        ]
    cells = [
        _md("## Missing values", "missing_md"),
        _code(check, b.missing_out, "missing", result=True),
    ]
    if p.imputation == "per_column":
        plan = f"{b.missing_plan} The imputers sit in the pipeline, fitted on training rows only."
        return [*cells, _md(plan, "missing_plan")]
    if p.imputation == "dropna":
        return [*cells, _code("df = df.dropna()\ndf.shape", b.dropna_out, "impute", result=True)]
    src = (
        f"num_cols, cat_cols = {_lst(b.num)}, {_lst(b.cat)}\n"
        'df[num_cols] = SimpleImputer(strategy="median").fit_transform(df[num_cols])\n'
        "df[cat_cols] = df[cat_cols].fillna(df[cat_cols].mode().iloc[0])"
    )
    return [*cells, _code(src, "", "impute", imp="from sklearn.impute import SimpleImputer")]


def _eda(b: BaseSpec, p: Plan) -> list[CellSpec]:
    if p.eda == "none":
        return []
    head = _md("## Exploratory analysis", "eda_md")
    if p.eda == "uninterpreted":
        src = 'df.describe().T[["mean", "min", "max"]]'
        return [head, _code(src, b.describe_out, "eda", result=True)]
    return [
        head,
        _code(b.eda_code, b.eda_out, "eda", result=True),
        _code(b.rel_code, b.rel_out, "rel", result=True),
        _md(b.findings, "findings"),
    ]


def build_cells(b: BaseSpec, p: Plan) -> list[CellSpec]:
    """All cells of the notebook for ``b`` under plan ``p``, layout applied."""
    pkgs = ["pandas", "scikit-learn"] + (
        [] if p.mlflow == "none" or p.setup == "pip_mid" else ["mlflow"]
    )
    pins = " ".join(f"{k}=={PINS[k]}" if p.setup != "unpinned" else k for k in pkgs)
    load = f'df = pd.read_csv("{b.csv}"{b.parse_dates})'
    if b.kind == "forecasting":
        load += '.sort_values("month")'
    cells = [
        _md(f"# {b.title}", "title"),
        _code(f"%pip install -q {pins}", "", "install"),
        _code("", "", "imports"),
        _code(f"{load}\ndf.shape", b.shape_out, "load", result=True, imp="import pandas as pd"),
        *_eda(b, p),
        *_missing(b, p),
        *_features(b, p),
        _prep(b, p),
        _md("## Training", "train_md"),
        _train(b, p),
        *_metrics(b, p),
        *_use(b, p),
        *_mlflow(b, p),
    ]
    cells = place_imports(cells, scattered=p.setup == "scattered")
    if p.layout == "no_markdown":
        cells = comments_for_markdown(cells)
    elif p.layout == "giant":
        cells = giant(cells)
    return cells
