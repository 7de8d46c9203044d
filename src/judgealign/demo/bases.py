"""The four good base notebooks of the demo set, described as data.

A :class:`BaseSpec` holds the task-specific facts (columns, model, printed outputs, the facts
an expert would cite); :mod:`judgealign.demo.builder` turns a spec plus a
:class:`~judgealign.demo.builder.Plan` into cells. Outputs are written by hand to be plausible
for the code; the notebooks are never executed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TaskKind = Literal["classification", "regression", "forecasting"]


@dataclass(frozen=True)
class BaseSpec:
    """Task-specific text for one base notebook (see the module docstring)."""

    name: str
    title: str
    kind: TaskKind
    task: str
    csv: str
    parse_dates: str
    shape_out: str
    target: str
    num: tuple[str, ...]
    cat: tuple[str, ...]
    id_col: str
    missing_out: str
    missing_plan: str
    missing_fact: str
    dropna_out: str
    eda_code: str
    eda_out: str
    rel_code: str
    rel_out: str
    findings: str
    eda_fact: str
    describe_out: str
    derived: str
    derived_col: str
    derived_reason: str
    leak: str
    leak_col: str
    leak_reason: str
    stratify: bool
    model_import: str
    model_expr: str
    scale: bool
    param: str
    values: str
    default: str
    cv_out: str
    scoring: str
    baseline_import: str
    baseline_code: str
    baseline_cv: str
    tune_metric: str
    tune_out: str
    better: Literal["max", "min"]
    eval_import: str
    eval_code: str
    test_out: str
    base_out: str
    train_out: str
    interpretation: str
    metric_fact: str
    new_csv: str
    pred_expr: str
    use_out: str
    use_note: str
    train_pred_out: str
    experiment: str
    run_name: str
    num_imputer: str = 'SimpleImputer(strategy="median")'
    cat_imputer: str = 'SimpleImputer(strategy="most_frequent")'


FLIGHT = BaseSpec(
    name="flight_delay",
    title="Flight delay prediction",
    kind="classification",
    task="Predict whether a scheduled flight will arrive 15+ minutes late, using "
    "data/flights_2024_05.csv, then flag tomorrow's risky flights. Track the experiment in MLflow.",
    csv="data/flights_2024_05.csv",
    parse_dates="",
    shape_out="(4800, 9)",
    target="delayed",
    num=("dep_hour", "distance", "prev_delay"),
    cat=("carrier", "origin"),
    id_col="flight",
    missing_out="prev_delay    212\ncarrier        35\ndtype: int64",
    missing_plan="`prev_delay` is right-skewed: median. `carrier` is categorical: most frequent.",
    missing_fact="prev_delay (212) and carrier (35)",
    dropna_out="(4555, 9)",
    eda_code='df["delayed"].value_counts(normalize=True).round(2)',
    eda_out="0    0.82\n1    0.18\nName: delayed, dtype: float64",
    rel_code='df.groupby(df["dep_hour"] >= 17)["delayed"].mean().round(2)',
    rel_out="dep_hour\nFalse    0.13\nTrue     0.29\nName: delayed, dtype: float64",
    findings="Only 18% of flights are delayed, so the split is stratified and accuracy is not "
    "used. Evening departures are delayed twice as often: an `is_evening` feature.",
    eda_fact="18% delayed, evening flights 0.29 vs 0.13",
    describe_out="          mean   min     max\ndep_hour  13.1   5.0    23.0\n"
    "distance  812.4  95.0  2704.0\nprev_delay 9.7   0.0   310.0",
    derived='{df}["is_evening"] = ({df}["dep_hour"] >= 17).astype(int)',
    derived_col="is_evening",
    derived_reason="`is_evening` captures the evening delay peak seen above.",
    leak='df["arr_delay_min"] = df["arr_time"] - df["sched_arr"]',
    leak_col="arr_delay_min",
    leak_reason="arr_delay_min is the arrival delay itself, known only after landing, and "
    "`delayed` is defined from it",
    stratify=True,
    model_import="from sklearn.linear_model import LogisticRegression",
    model_expr='LogisticRegression(max_iter=1000, class_weight="balanced")',
    scale=True,
    param="model__C",
    values="[0.1, 1.0, 10.0]",
    default="1.0",
    cv_out="{'model__C': 1.0} 0.741\nbaseline 0.5",
    scoring="roc_auc",
    baseline_import="from sklearn.dummy import DummyClassifier",
    baseline_code="baseline = DummyClassifier().fit(X_train, y_train)",
    baseline_cv='print("baseline", cross_val_score(DummyClassifier(), X_train, y_train, '
    'cv=5, scoring="roc_auc").mean())',
    tune_metric="roc_auc_score(y_test, pipe.predict_proba(X_test)[:, 1])",
    tune_out="{0.1: 0.738, 1.0: 0.746, 10.0: 0.744}",
    better="max",
    eval_import="from sklearn.metrics import f1_score, roc_auc_score",
    eval_code="def evaluate(est, X, y):\n    p = est.predict_proba(X)[:, 1]\n"
    '    return {"f1": round(f1_score(y, p > 0.5), 3), "roc_auc": round(roc_auc_score(y, p), 3)}',
    test_out="{'f1': 0.46, 'roc_auc': 0.746}",
    base_out="{'f1': 0.0, 'roc_auc': 0.5}",
    train_out="{'f1': 0.49, 'roc_auc': 0.771}",
    interpretation="ROC-AUC 0.75 against 0.50 for the baseline: useful for ranking flights, "
    "but F1 0.46 means many false alarms at the 0.5 threshold.",
    metric_fact="F1 and ROC-AUC",
    new_csv="data/flights_2024_06_01.csv",
    pred_expr="loaded.predict_proba({x})[:, 1].round(2)",
    use_out="  flight  pred\n0  UA312  0.71\n1  DL88   0.64\n2  AA1203 0.58",
    use_note="Three evening flights out of ORD top tomorrow's risk list.",
    train_pred_out="array([0, 0, 1])",
    experiment="flight-delay",
    run_name="logreg-grid",
)

HOUSE = BaseSpec(
    name="house_prices",
    title="House price regression",
    kind="regression",
    task="Predict the sale price of a house from data/houses.csv and price the new listings in "
    "data/listings_new.csv. Track the experiment in MLflow.",
    csv="data/houses.csv",
    parse_dates="",
    shape_out="(2930, 8)",
    target="price",
    num=("area", "lot_area", "year_built", "garage_cars"),
    cat=("neighborhood",),
    id_col="listing_id",
    missing_out="lot_area        490\ngarage_cars     157\nneighborhood     12\ndtype: int64",
    missing_plan="`lot_area` is skewed: median; `garage_cars` is a count: median; "
    "`neighborhood`: most frequent.",
    missing_fact="lot_area (490), garage_cars (157) and neighborhood (12)",
    dropna_out="(2301, 8)",
    eda_code='df["price"].describe().round(0)',
    eda_out="count      2930\nmean     180796\nstd       79887\nmin       12789\nmax      755000",
    rel_code='df[["area", "year_built", "price"]].corr()["price"].round(2)',
    rel_out="area          0.71\nyear_built    0.56\nprice         1.00",
    findings="Prices are right-skewed with a long tail, so errors are read in dollars (MAE) "
    "and the age of the house matters: a derived `age` feature.",
    eda_fact="price skewed to 755k, area r=0.71",
    describe_out="              mean     min      max\narea        1500.0   334.0   5642.0\n"
    "year_built  1971.4  1872.0   2010.0",
    derived='{df}["age"] = 2010 - {df}["year_built"]',
    derived_col="age",
    derived_reason="`age` at sale is easier for the model than the build year.",
    leak='df["price_per_sqft"] = df["price"] / df["area"]',
    leak_col="price_per_sqft",
    leak_reason="price_per_sqft is computed from the target price",
    stratify=False,
    model_import="from sklearn.ensemble import GradientBoostingRegressor",
    model_expr="GradientBoostingRegressor(random_state=42)",
    scale=False,
    param="model__max_depth",
    values="[2, 3, 4]",
    default="3",
    cv_out="{'model__max_depth': 3} -17204.919\nbaseline -58311.204",
    scoring="neg_mean_absolute_error",
    baseline_import="from sklearn.dummy import DummyRegressor",
    baseline_code='baseline = DummyRegressor(strategy="median").fit(X_train, y_train)',
    baseline_cv='print("baseline", cross_val_score(DummyRegressor(strategy="median"), X_train, '
    'y_train, cv=5, scoring="neg_mean_absolute_error").mean())',
    tune_metric="mean_absolute_error(y_test, pipe.predict(X_test))",
    tune_out="{2: 18810.4, 3: 16935.2, 4: 17102.8}",
    better="min",
    eval_import="from sklearn.metrics import mean_absolute_error, r2_score",
    eval_code="def evaluate(est, X, y):\n    p = est.predict(X)\n"
    '    return {"mae": round(mean_absolute_error(y, p)), "r2": round(r2_score(y, p), 3)}',
    test_out="{'mae': 16935, 'r2': 0.891}",
    base_out="{'mae': 57120, 'r2': -0.012}",
    train_out="{'mae': 9804, 'r2': 0.962}",
    interpretation="Typical error $16.9k against $57.1k for the median baseline; errors are "
    "largest above $400k where few sales exist.",
    metric_fact="MAE and R²",
    new_csv="data/listings_new.csv",
    pred_expr="loaded.predict({x}).round(-3)",
    use_out="  listing_id      pred\n0  L-1043   214000.0\n1  L-1044   167000.0\n"
    "2  L-1045   402000.0",
    use_note="L-1045 lies in the sparse high-price range: treat its estimate with care.",
    train_pred_out="array([208500., 181500., 223500.])",
    experiment="house-prices",
    run_name="gbr-grid",
)

SALES = BaseSpec(
    name="monthly_sales",
    title="Monthly sales forecast",
    kind="forecasting",
    task="Forecast next month's unit sales per store from data/monthly_sales.csv (2019-2023, "
    "with lag columns) and produce the January 2024 forecast. Track the experiment in MLflow.",
    csv="data/monthly_sales.csv",
    parse_dates=', parse_dates=["month"]',
    shape_out="(1800, 7)",
    target="units",
    num=("lag_1", "lag_12", "promo_spend"),
    cat=("store_type",),
    id_col="store",
    missing_out="promo_spend    96\nstore_type      8\ndtype: int64",
    missing_plan="`promo_spend` is missing when no promotion ran: constant 0. `store_type`: most "
    "frequent.",
    missing_fact="promo_spend (96) and store_type (8)",
    dropna_out="(1697, 7)",
    eda_code='df.groupby("month")["units"].sum().iloc[[-13, -12, -1]]',
    eda_out="month\n2022-12-01    51200\n2023-01-01    38400\n2023-12-01    53800\n"
    "Name: units, dtype: int64",
    rel_code='df.groupby(df["month"].dt.month)["units"].mean().round(0).iloc[[0, 6, 11]]',
    rel_out="month\n1     1281.0\n7     1420.0\n12    1796.0",
    findings="Strong December peak and a January dip: yearly seasonality, so the split is "
    "chronological and `month_num` is added; the naive baseline is last year's value.",
    eda_fact="December peak, January dip",
    describe_out="            mean    min     max\nlag_1     1402.3   210.0  3980.0\n"
    "promo_spend 310.5    0.0  2500.0",
    derived='{df}["month_num"] = {df}["month"].dt.month',
    derived_col="month_num",
    derived_reason="`month_num` lets the model learn the yearly pattern.",
    leak='df["units_3m"] = df.groupby("store")["units"].transform(\n'
    "    lambda s: s.rolling(3, 1).mean())",
    leak_col="units_3m",
    leak_reason="units_3m is a rolling mean that includes the current month's units, the target",
    stratify=False,
    model_import="from sklearn.linear_model import Ridge",
    model_expr="Ridge()",
    scale=True,
    param="model__alpha",
    values="[0.1, 1.0, 10.0]",
    default="1.0",
    cv_out="{'model__alpha': 1.0} -118.642\nbaseline 163.2",
    scoring="neg_mean_absolute_error",
    baseline_import="",
    baseline_code="class SeasonalNaive:  # last year's value\n    def predict(self, X):\n"
    '        return X["lag_12"]\nbaseline = SeasonalNaive()',
    baseline_cv='print("baseline", round(mean_absolute_error(y_train, X_train["lag_12"]), 1))',
    tune_metric="mean_absolute_error(y_test, pipe.predict(X_test))",
    tune_out="{0.1: 121.7, 1.0: 117.9, 10.0: 125.3}",
    better="min",
    eval_import="from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error",
    eval_code="def evaluate(est, X, y):\n    p = est.predict(X)\n"
    '    return {"mae": round(mean_absolute_error(y, p), 1),\n'
    '            "mape": round(mean_absolute_percentage_error(y, p), 3)}',
    test_out="{'mae': 117.9, 'mape': 0.084}",
    base_out="{'mae': 171.4, 'mape': 0.127}",
    train_out="{'mae': 96.2, 'mape': 0.071}",
    interpretation="MAE 118 units (8.4%) against 171 for the seasonal-naive forecast; the "
    "largest misses are December peaks of promoted stores.",
    metric_fact="MAE and MAPE",
    new_csv="data/sales_2024_01.csv",
    pred_expr="loaded.predict({x}).round(0)",
    use_out="  store    pred\n0  S01   1204.0\n1  S02    978.0\n2  S03   1530.0",
    use_note="January forecasts sit ~20% below December, matching the seasonal dip.",
    train_pred_out="array([1188., 1342.,  904.])",
    experiment="monthly-sales",
    run_name="ridge-tscv",
    num_imputer='SimpleImputer(strategy="constant", fill_value=0)',
)

CHURN = BaseSpec(
    name="customer_churn",
    title="Customer churn classification",
    kind="classification",
    task="Predict which subscription customers will churn next quarter from data/customers.csv "
    "and score the active customers in data/active_customers.csv. Track the experiment in MLflow.",
    csv="data/customers.csv",
    parse_dates="",
    shape_out="(7043, 8)",
    target="churn",
    num=("tenure", "monthly_charges", "support_calls"),
    cat=("contract", "payment"),
    id_col="customer_id",
    missing_out="monthly_charges    11\npayment           164\ndtype: int64",
    missing_plan="`monthly_charges`: median; `payment`: an explicit 'unknown' category, since "
    "missing payment info may itself signal churn.",
    missing_fact="monthly_charges (11) and payment (164)",
    dropna_out="(6868, 8)",
    eda_code='df["churn"].value_counts(normalize=True).round(2)',
    eda_out="0    0.73\n1    0.27\nName: churn, dtype: float64",
    rel_code='df.groupby("contract")["churn"].mean().round(2)',
    rel_out="contract\nmonth-to-month    0.43\none-year          0.11\ntwo-year          0.03",
    findings="27% churn: stratified split, F1 and ROC-AUC. Month-to-month contracts churn most, "
    "and charges per month of tenure may matter: a `charge_per_tenure` feature.",
    eda_fact="27% churn, month-to-month 0.43",
    describe_out="                 mean   min    max\ntenure           32.4   0.0   72.0\n"
    "monthly_charges  64.8  18.3  118.8",
    derived='{df}["charge_per_tenure"] = {df}["monthly_charges"] / ({df}["tenure"] + 1)',
    derived_col="charge_per_tenure",
    derived_reason="`charge_per_tenure` separates new, expensive customers.",
    leak='df["cancel_requested"] = df["cancel_date"].notna().astype(int)',
    leak_col="cancel_requested",
    leak_reason="cancel_requested is set from the cancellation date, which exists only for "
    "customers who churned",
    stratify=True,
    model_import="from sklearn.ensemble import RandomForestClassifier",
    model_expr='RandomForestClassifier(class_weight="balanced", random_state=42)',
    scale=False,
    param="model__max_depth",
    values="[4, 8, None]",
    default="None",
    cv_out="{'model__max_depth': 8} 0.842\nbaseline 0.5",
    scoring="roc_auc",
    baseline_import="from sklearn.dummy import DummyClassifier",
    baseline_code="baseline = DummyClassifier().fit(X_train, y_train)",
    baseline_cv='print("baseline", cross_val_score(DummyClassifier(), X_train, y_train, '
    'cv=5, scoring="roc_auc").mean())',
    tune_metric="roc_auc_score(y_test, pipe.predict_proba(X_test)[:, 1])",
    tune_out="{4: 0.836, 8: 0.849, None: 0.828}",
    better="max",
    eval_import="from sklearn.metrics import f1_score, roc_auc_score",
    eval_code="def evaluate(est, X, y):\n    p = est.predict_proba(X)[:, 1]\n"
    '    return {"f1": round(f1_score(y, p > 0.5), 3), "roc_auc": round(roc_auc_score(y, p), 3)}',
    test_out="{'f1': 0.63, 'roc_auc': 0.849}",
    base_out="{'f1': 0.0, 'roc_auc': 0.5}",
    train_out="{'f1': 0.71, 'roc_auc': 0.918}",
    interpretation="ROC-AUC 0.85 against 0.50 for the baseline; F1 0.63 means about a third of "
    "churners are still missed at the 0.5 threshold.",
    metric_fact="F1 and ROC-AUC",
    new_csv="data/active_customers.csv",
    pred_expr="loaded.predict_proba({x})[:, 1].round(2)",
    use_out="  customer_id  pred\n0  7590-VHVEG  0.81\n1  5575-GNVDE  0.12\n2  3668-QPYBK  0.77",
    use_note="Customers above 0.7 are month-to-month with rising charges: the retention "
    "team's call list.",
    train_pred_out="array([0, 0, 1])",
    experiment="customer-churn",
    run_name="rf-grid",
    cat_imputer='SimpleImputer(strategy="constant", fill_value="unknown")',
)

BASES: dict[str, BaseSpec] = {b.name: b for b in (FLIGHT, HOUSE, SALES, CHURN)}
