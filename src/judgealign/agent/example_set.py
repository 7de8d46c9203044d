"""The shipped example suite's data and its two synthetic agent versions.

``python -m judgealign.agent.example_set --out DIR`` writes, deterministically (seeded numpy):

- ``data/*.csv``: four small tabular problems (customer churn and flight delays:
  classification; house prices: regression; monthly store sales: forecasting), each as a
  training table with missing values (~300 rows), the same table complete, a small sample
  (120 rows, with missing values) and new rows to predict. Synthetic: no third-party data.
- ``replay/v1`` and ``replay/v2``: one folder per case holding ``1.ipynb`` (``2.ipynb`` where a
  case asks for two notebooks), the notebooks two versions of an agent "wrote". They are NOT
  written by a model: they are the demo set's templates (:mod:`judgealign.demo`) rendered for
  each case's data files, with flaws planted per version (v1 leaks imputation statistics and
  skips cross-validation more often; v2 fixes most of that and brings a few flaws of its own),
  so the two versions differ in known ways. Their printed shapes and missing-value counts are
  those of the shipped data; the other outputs are illustrative (never executed).
- ``replay/manifest.json``: per notebook the planted flaws and the score an expert would give
  on each dimension (the demo's expert rules), to check what a judge finds.

``suite.yaml`` beside them is written by hand; ``tests/test_agent_example_set.py`` checks that
the shipped files equal a fresh generation.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from judgealign.demo.bases import BASES, BaseSpec
from judgealign.demo.builder import build_cells
from judgealign.demo.expert import expert_labels
from judgealign.demo.layout import to_notebook
from judgealign.demo.mutations import mutate

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
SEED = 20240501
MANIFEST_VERSION = 1

Row = dict[str, Any]


# -- datasets -------------------------------------------------------------------------------
def _customers(
    rng: np.random.Generator, n: int, *, target: bool = True, first: int = 10000
) -> list[Row]:
    contracts = np.array(["month-to-month", "one-year", "two-year"])
    payments = np.array(["card", "bank-transfer", "e-check", "mailed-check"])
    rows = []
    for i in range(n):
        contract = str(contracts[rng.choice(3, p=[0.55, 0.25, 0.20])])
        tenure = int(rng.integers(0, 73))
        charges = round(float(np.clip(rng.normal(65, 28), 18.3, 118.8)), 2)
        calls = int(rng.poisson(1.4))
        payment = str(payments[rng.integers(4)])
        row: Row = {
            "customer_id": f"C{first + i}",
            "tenure": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "contract": contract,
            "payment": payment,
        }
        if target:
            logit = (
                -1.2
                + {"month-to-month": 1.3, "one-year": -0.6, "two-year": -1.8}[contract]
                - 0.035 * tenure
                + 0.012 * (charges - 65)
                + 0.35 * calls
                + (0.5 if payment == "e-check" else 0.0)
            )
            row["churn"] = int(rng.random() < 1 / (1 + np.exp(-logit)))
        rows.append(row)
    return rows


def _flights(rng: np.random.Generator, n: int, *, target: bool = True, first: int = 0) -> list[Row]:
    carriers = np.array(["AA", "DL", "UA", "WN", "B6"])
    origins = np.array(["ATL", "ORD", "DFW", "DEN", "JFK", "SEA"])
    rows = []
    for _ in range(n):
        carrier = str(carriers[rng.integers(5)])
        dep_hour = int(rng.integers(5, 24))
        distance = int(np.clip(rng.lognormal(6.5, 0.6), 95, 2704))
        prev_delay = int(min(310, rng.exponential(10))) if rng.random() < 0.6 else 0
        sched_arr = dep_hour * 60 + int(distance / 7.5) + 30
        row: Row = {
            "flight": f"{carrier}{int(rng.integers(10, 2000))}",
            "carrier": carrier,
            "origin": str(origins[rng.integers(6)]),
            "dep_hour": dep_hour,
            "distance": distance,
            "prev_delay": prev_delay,
            "sched_arr": sched_arr,
        }
        if target:
            delay = rng.normal(-4, 12) + 0.6 * prev_delay + (9 if dep_hour >= 17 else 0)
            delay += 6 if carrier in ("WN", "B6") else 0
            row["arr_time"] = sched_arr + int(delay)
            row["delayed"] = int(delay >= 15)
        rows.append(row)
    return rows


def _houses(
    rng: np.random.Generator, n: int, *, target: bool = True, first: int = 1000
) -> list[Row]:
    hoods = np.array(["NAmes", "CollgCr", "OldTown", "Edwards", "Somerst", "NridgHt"])
    premium = {"NAmes": 0, "CollgCr": 18000, "OldTown": -22000, "Edwards": -15000}
    premium |= {"Somerst": 30000, "NridgHt": 85000}
    rows = []
    for i in range(n):
        hood = str(hoods[rng.integers(6)])
        area = int(np.clip(rng.normal(1500, 480), 334, 5642))
        year = int(np.clip(rng.normal(1971, 30), 1872, 2010))
        row: Row = {
            "listing_id": f"L-{first + i}",
            "area": area,
            "lot_area": int(np.clip(rng.lognormal(9.1, 0.45), 1300, 215000)),
            "year_built": year,
            "garage_cars": int(np.clip(rng.normal(1.8, 0.75), 0, 4).round()),
            "bedrooms": int(np.clip(rng.normal(2.9, 0.8), 1, 6).round()),
            "neighborhood": hood,
        }
        if target:
            price = 20000 + 95 * area + 600 * (year - 1900) + 9000 * row["garage_cars"]
            price += premium[hood] + rng.normal(0, 22000)
            row["price"] = int(max(12789, round(price, -2)))
        rows.append(row)
    return rows


def _sales(
    rng: np.random.Generator, stores: int, start_year: int, months: int
) -> tuple[list[Row], list[Row]]:
    """Monthly units per store simulated from January 2019 (history for the lags): the rows
    from ``start_year`` on (``months`` per store), and each store's next month without units."""
    types = np.array(["mall", "street", "outlet"])
    rows: list[Row] = []
    after: list[Row] = []
    first = (start_year - 2019) * 12
    for s in range(stores):
        level = rng.uniform(700, 2000)
        history: list[float] = []
        promos: list[float] = []
        for t in range(first + months + 1):
            month = t % 12 + 1
            season = {1: 0.82, 7: 1.02, 11: 1.12, 12: 1.3}.get(month, 1.0)
            promo = float(round(rng.uniform(200, 2500), 0)) if rng.random() < 0.35 else 0.0
            units = level * (1 + 0.004 * t) * season + 0.08 * promo + rng.normal(0, 60)
            history.append(max(50.0, round(units, 0)))
            promos.append(promo)
        for t in range(first, first + months + 1):
            row: Row = {
                "store": f"S{s + 1:02d}",
                "month": f"{2019 + t // 12}-{t % 12 + 1:02d}-01",
                "store_type": str(types[s % 3]),
                "lag_1": int(history[t - 1]),
                "lag_12": int(history[t - 12]),
                "promo_spend": int(promos[t]),
            }
            if t < first + months:
                rows.append({**row, "units": int(history[t])})
            else:
                after.append(row)
    return rows, after


def _with_missing(rng: np.random.Generator, rows: list[Row], rates: dict[str, float]) -> list[Row]:
    out = []
    for row in rows:
        row = dict(row)
        for col, rate in rates.items():
            if rng.random() < rate:
                row[col] = ""
        out.append(row)
    return out


@dataclass(frozen=True)
class Domain:
    """One problem: its demo base notebook, file names and how its tables are made."""

    key: str
    base: str
    make: Callable[..., Any]
    missing: dict[str, float]
    train: str
    new: str


DOMAINS = (
    Domain("churn", "customer_churn", _customers,
           {"monthly_charges": 0.02, "payment": 0.06}, "customers", "customers_active"),
    Domain("flights", "flight_delay", _flights,
           {"prev_delay": 0.07, "carrier": 0.015}, "flights", "flights_new"),
    Domain("houses", "house_prices", _houses,
           {"lot_area": 0.16, "garage_cars": 0.05, "neighborhood": 0.015}, "houses",
           "listings_new"),
    Domain("sales", "monthly_sales", _sales,
           {"promo_spend": 0.05, "store_type": 0.01}, "monthly_sales", "sales_2024_01"),
)  # fmt: skip


def _tables(d: Domain, seed: int) -> dict[str, list[Row]]:
    """The domain's four tables, each from its own seeded stream."""
    rngs = [np.random.default_rng([seed, DOMAINS.index(d), k]) for k in range(5)]
    if d.key == "sales":
        full, new = _sales(rngs[0], 6, 2020, 48)
        small, _ = _sales(rngs[1], 3, 2020, 40)
    else:
        full = d.make(rngs[0], 300)
        small = d.make(rngs[1], 120)
        new = d.make(rngs[2], 20, target=False, first=20000)
    return {
        f"{d.train}.csv": _with_missing(rngs[3], full, d.missing),
        f"{d.train}_complete.csv": full,
        f"{d.train}_small.csv": _with_missing(rngs[4], small, d.missing),
        f"{d.new}.csv": new,
    }


def _csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def datasets(seed: int = SEED) -> dict[str, list[Row]]:
    """Every shipped table by file name (``customers.csv``, ...)."""
    out: dict[str, list[Row]] = {}
    for d in DOMAINS:
        out.update(_tables(d, seed))
    return out


# -- the two agent versions -----------------------------------------------------------------
# Case -> the flaws each version's notebook(s) carry (one line per notebook, "-" for none).
# v1: imputation fitted before the split and single fits are common; v2 fixed those and
# brought smaller lapses (markdown dropped, inference on training rows, one imputer for all).
_VERSIONS: dict[str, dict[str, list[str]]] = {
    "v1": {
        "churn-missing": ["impute_before_split no_cv_single_fit no_inference_step"],
        "churn-complete": ["no_missing_values no_cv_single_fit metrics_without_baseline"],
        "churn-brief": ["drop_all_missing_rows tune_on_test_set no_mlflow uninterpreted_eda",
                        "impute_before_split no_cv_single_fit one_giant_cell"],
        "flights-missing": ["impute_before_split tune_on_test_set unpinned_installs"],
        "flights-complete": ["no_missing_values no_cv_single_fit no_inference_step"],
        "flights-brief": ["drop_all_missing_rows no_cv_single_fit no_eda",
                          "one_imputer_for_all tune_on_test_set mlflow_metrics_only"],
        "houses-missing": ["impute_before_split no_cv_single_fit predict_on_train_only"],
        "houses-complete": ["no_missing_values tune_on_test_set metrics_without_baseline"],
        "houses-brief": ["drop_all_missing_rows no_cv_single_fit no_mlflow",
                         "impute_before_split tune_on_test_set no_markdown"],
        "sales-missing": ["impute_before_split shuffled_time_split no_inference_step"],
        "sales-complete": ["no_missing_values shuffled_time_split metrics_without_baseline"],
        "sales-brief": ["drop_all_missing_rows no_cv_single_fit uninterpreted_eda",
                        "one_imputer_for_all shuffled_time_split no_mlflow"],
    },
    "v2": {
        "churn-missing": ["no_markdown"],
        "churn-complete": ["no_missing_values no_inference_step"],
        "churn-brief": ["one_imputer_for_all metrics_without_baseline",
                        "predict_on_train_only"],
        "flights-missing": ["mlflow_metrics_only"],
        "flights-complete": ["no_missing_values predict_on_train_only"],
        "flights-brief": ["one_imputer_for_all no_cv_single_fit", "uninterpreted_eda"],
        "houses-missing": ["-"],
        "houses-complete": ["no_missing_values no_cv_single_fit"],
        "houses-brief": ["one_imputer_for_all unpinned_installs",
                         "inference_skips_preprocessing"],
        "sales-missing": ["metrics_without_baseline"],
        "sales-complete": ["no_missing_values no_inference_step"],
        "sales-brief": ["impute_before_split", "one_imputer_for_all tune_on_test_set"],
    },
}  # fmt: skip
VERSIONS = tuple(_VERSIONS)


def _pandas_counts(counts: dict[str, int]) -> str:
    """A missing-value count Series as pandas prints it."""
    width = max(len(c) for c in counts) + 4
    digits = max(len(str(v)) for v in counts.values())
    body = "\n".join(f"{c:<{width}}{v:>{digits}}" for c, v in counts.items())
    return f"{body}\ndtype: int64"


def _target_summary(base: BaseSpec, rows: list[Row]) -> str:
    """The output of the base's first EDA cell (the target's distribution) on ``rows``."""
    y = [float(r[base.target]) for r in rows if r[base.target] != ""]
    if base.kind == "classification":
        share = sum(y) / len(y)
        name = base.target
        return f"0    {1 - share:.2f}\n1    {share:.2f}\nName: {name}, dtype: float64"
    if base.kind == "regression":
        arr = np.asarray(y)
        stats = [("count", len(y)), ("mean", arr.mean()), ("std", arr.std(ddof=1))]
        stats += [("min", arr.min()), ("max", arr.max())]
        return "\n".join(f"{k:<5}{round(float(v)):>11}" for k, v in stats)
    totals: dict[str, float] = {}
    for r in rows:
        totals[str(r["month"])] = totals.get(str(r["month"]), 0.0) + float(r[base.target])
    months = sorted(totals)
    shown = [months[-13], months[-12], months[-1]]
    body = "\n".join(f"{m}    {int(totals[m])}" for m in shown)
    return f"month\n{body}\nName: {base.target}, dtype: int64"


def _spec_for(base: BaseSpec, train: str, new: str, rows: list[Row]) -> BaseSpec:
    """The demo base rewritten for a case's files: paths, shape and missing values."""
    cols = list(rows[0])
    counts = {c: sum(1 for r in rows if r[c] == "") for c in cols}
    counts = {c: v for c, v in counts.items() if v}
    complete = sum(1 for r in rows if all(v != "" for v in r.values()))
    changes: dict[str, Any] = {
        "csv": f"data/{train}",
        "new_csv": f"data/{new}",
        "shape_out": f"({len(rows)}, {len(cols)})",
        "dropna_out": f"({complete}, {len(cols)})",
    }
    changes["eda_out"] = _target_summary(base, rows)
    if counts:
        changes["missing_out"] = _pandas_counts(counts)
        items = [f"{c} ({v})" for c, v in counts.items()]
        changes["missing_fact"] = (
            items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"
        )
    return replace(base, **changes)


def case_files() -> dict[str, tuple[str, str]]:
    """Case id -> (training file, new-rows file), as ``suite.yaml`` names them."""
    out = {}
    for d in DOMAINS:
        out[f"{d.key}-missing"] = (f"{d.train}.csv", f"{d.new}.csv")
        out[f"{d.key}-complete"] = (f"{d.train}_complete.csv", f"{d.new}.csv")
        out[f"{d.key}-brief"] = (f"{d.train}_small.csv", f"{d.new}.csv")
    return out


def replay_notebooks(seed: int = SEED) -> tuple[dict[str, str], dict[str, Any]]:
    """``{relative path: notebook JSON}`` for both versions, and the manifest."""
    tables = datasets(seed)
    bases = {f"{d.key}-": d.base for d in DOMAINS}
    files: dict[str, str] = {}
    entries = []
    for version, cases in _VERSIONS.items():
        for case, recipes in cases.items():
            train, new = case_files()[case]
            base = next(b for prefix, b in bases.items() if case.startswith(prefix))
            spec = _spec_for(BASES[base], train, new, tables[train])
            for index, recipe in enumerate(recipes, 1):
                names = [] if recipe == "-" else recipe.split()
                plan = mutate(base, names).plan
                cells = build_cells(spec, plan)
                writes: Any = nbformat.writes
                path = f"{version}/{case}/{index}.ipynb"
                files[path] = str(writes(to_notebook(cells), version=4)) + "\n"
                planted = {d: v[0] for d, v in expert_labels(spec, plan, cells).items()}
                entries.append(
                    {
                        "version": version,
                        "case": case,
                        "notebook": index,
                        "base": base,
                        "flaws": names,
                        "expert_scores": planted,
                    }
                )
    return files, {"schema_version": MANIFEST_VERSION, "seed": seed, "notebooks": entries}


def write_example_set(out: Path, seed: int = SEED) -> None:
    """Write ``data/`` and ``replay/`` (notebooks and manifest) under ``out``."""
    (out / "data").mkdir(parents=True, exist_ok=True)
    for name, rows in datasets(seed).items():
        (out / "data" / name).write_text(_csv(rows), encoding="utf-8")
    files, manifest = replay_notebooks(seed)
    for rel, text in files.items():
        path = out / "replay" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (out / "replay" / "manifest.json").write_text(
        json.dumps(manifest, indent=1) + "\n", encoding="utf-8"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m judgealign.agent.example_set")
    parser.add_argument("--out", type=Path, default=EXAMPLES_DIR, help="target folder")
    args = parser.parse_args(argv)
    write_example_set(args.out)
    print(f"wrote the example suite's data and replay notebooks to {args.out}")


if __name__ == "__main__":
    main()
