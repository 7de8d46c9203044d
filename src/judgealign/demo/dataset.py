"""The shipped demo set: 24 ML notebooks with planted flaws and expert labels.

Four good base notebooks (flight delay and customer churn classification, house price
regression, monthly sales forecasting), six variants each, chosen so that every dimension
spreads over 1/2/3 and the three demo dimensions (model_training, model_use, data_imputation)
are balanced (data_imputation also has 0 = not applicable). The files live in the package
(``data/notebooks/*.ipynb``, ``data/labels.jsonl``, ``data/manifest.json``) and equal a fresh
generation from :data:`DEMO_RECIPES`.

Each item's ``group`` is its base notebook. Variants of one base share most of their text, so
a fold holding one variant in training and another in test would let retrieval find a near
copy of the test notebook with its label: grouping keeps every variant of a base in the same
fold, which makes folds harder but the measured alignment honest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.demo.expert import DIMENSIONS
from judgealign.demo.mutations import DemoNotebook, mutate
from judgealign.errors import DataError

if TYPE_CHECKING:
    from judgealign.judge.judge import Judge

DATA_DIR = Path(__file__).resolve().parent / "data"
MANIFEST_VERSION = 1

# How data/aligned-judge.json was made (13.5 min on 2 cores, 10 reflection calls); rerun it
# after changing the demo set, the prompts or the default local model. The demo's answer and
# guideline budgets keep a CPU judge's answers short.
DEMO_JUDGE_COMMAND = (
    "judgealign align --rubric ml-notebook --items src/judgealign/demo/data/notebooks "
    "--labels src/judgealign/demo/data/labels.jsonl --model local:default --embedder local "
    "--max-tokens 150 --max-guidelines 4 --concurrency 1 "
    "--out src/judgealign/demo/data/aligned-judge.json"
)

# Stem -> planted mutations (an indented line continues the one above); the base is the stem
# without its number. Chosen by hand for the label spread described in the module docstring
# (checked in tests/test_demo_set.py).
_RECIPES = """
flight_delay_01:
flight_delay_02: impute_before_split no_cv_single_fit no_inference_step no_mlflow
flight_delay_03: one_imputer_for_all tune_on_test_set predict_on_train_only unpinned_installs
flight_delay_04: no_missing_values no_cv_single_fit inference_skips_preprocessing one_giant_cell
flight_delay_05: drop_all_missing_rows tune_on_test_set no_inference_step uninterpreted_eda
flight_delay_06: one_imputer_for_all metrics_without_baseline mlflow_metrics_only no_markdown
house_prices_01: no_eda metrics_on_training_set scattered_imports
house_prices_02: impute_before_split tune_on_test_set predict_on_train_only
house_prices_03: one_imputer_for_all no_cv_single_fit no_inference_step no_mlflow
house_prices_04: no_missing_values tune_on_test_set no_inference_step pip_install_mid_notebook
house_prices_05: drop_all_missing_rows no_cv_single_fit predict_on_train_only target_leak_feature
house_prices_06: no_derived_features one_giant_cell mlflow_metrics_only
monthly_sales_01: uninterpreted_eda metrics_without_baseline unpinned_installs
monthly_sales_02: impute_before_split shuffled_time_split no_inference_step no_markdown
monthly_sales_03: one_imputer_for_all no_cv_single_fit inference_skips_preprocessing no_mlflow
monthly_sales_04: no_missing_values tune_on_test_set predict_on_train_only get_dummies_before_split
monthly_sales_05: drop_all_missing_rows no_cv_single_fit no_derived_features mlflow_metrics_only
monthly_sales_06: no_inference_step target_leak_feature scattered_imports no_eda
customer_churn_01:
customer_churn_02: impute_before_split no_cv_single_fit predict_on_train_only uninterpreted_eda
customer_churn_03: one_imputer_for_all tune_on_test_set no_inference_step one_giant_cell
customer_churn_04: no_missing_values no_cv_single_fit inference_skips_preprocessing
    metrics_on_training_set
customer_churn_05: tune_on_test_set no_eda pip_install_mid_notebook get_dummies_before_split
customer_churn_06: target_leak_feature no_inference_step mlflow_metrics_only no_markdown
"""

DEMO_RECIPES: dict[str, tuple[str, tuple[str, ...]]] = {
    stem: (stem.rsplit("_", 1)[0], tuple(rest.split()))
    for stem, _, rest in (
        line.partition(":") for line in _RECIPES.replace("\n    ", " ").strip().splitlines()
    )
}


def demo_notebooks_dir() -> Path:
    """The folder of the shipped demo ``.ipynb`` files.

    >>> sorted(demo_notebooks_dir().glob("*.ipynb"))[0].name
    'customer_churn_01.ipynb'
    """
    return DATA_DIR / "notebooks"


def demo_labels_path() -> Path:
    """The shipped expert labels, one JSON object a line (item = notebook file name)."""
    return DATA_DIR / "labels.jsonl"


def demo_manifest_path() -> Path:
    """The shipped manifest: base notebook and planted mutations of each demo notebook."""
    return DATA_DIR / "manifest.json"


def demo_judge_path() -> Path:
    """The shipped judge aligned on every demo label (all nine dimensions, embedded local
    model and embedder; made by :data:`DEMO_JUDGE_COMMAND`)."""
    return DATA_DIR / "aligned-judge.json"


def load_demo_judge(**params: Any) -> Judge:
    """The shipped aligned ml-notebook judge; ``params`` replace stored ones (``model=`` to
    score with another model than the embedded ``local:default``).

    Its memory holds the 216 demo labels, so judging the demo notebooks themselves with it
    is not a measurement: use it on new notebooks (an agent's, say), or use
    ``evaluate`` for honest figures.

    >>> judge = load_demo_judge(model="fake:lenient")
    >>> len(judge.memory_.label_ids()), judge.get_params()["max_tokens"]
    (216, 150)
    """
    from judgealign.judge.persistence import load_judge

    return load_judge(demo_judge_path(), **params)


def demo_set() -> dict[str, DemoNotebook]:
    """The demo notebooks built from :data:`DEMO_RECIPES`, keyed by file stem."""
    return {stem: mutate(base, muts) for stem, (base, muts) in DEMO_RECIPES.items()}


def _render(notebooks: dict[str, DemoNotebook]) -> tuple[dict[str, str], str, str]:
    files = {f"{stem}.ipynb": nb.notebook_json() for stem, nb in notebooks.items()}
    lines = []
    entries = []
    for stem, nb in notebooks.items():
        item = f"{stem}.ipynb"
        for dim, (score, why) in nb.labels().items():
            record = {"item": item, "dimension": dim, "score": score, "rationale": why}
            lines.append(json.dumps({**record, "rater": "expert"}, ensure_ascii=False))
        entries.append({"item": item, "base": nb.base, "mutations": list(nb.mutations)})
    manifest = {"schema_version": MANIFEST_VERSION, "notebooks": entries}
    return files, "\n".join(lines) + "\n", json.dumps(manifest, indent=1) + "\n"


def write_demo_set(out: Path) -> None:
    """Write ``notebooks/*.ipynb``, ``labels.jsonl`` and ``manifest.json`` under ``out``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_demo_set(Path(d))
    ...     len(list((Path(d) / "notebooks").glob("*.ipynb")))
    24
    """
    files, labels, manifest = _render(demo_set())
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / "notebooks" / name).write_text(text, encoding="utf-8")
    (out / "labels.jsonl").write_text(labels, encoding="utf-8")
    (out / "manifest.json").write_text(manifest, encoding="utf-8")


def load_demo(dimensions: Sequence[str] | None = None) -> tuple[list[Item], list[Label]]:
    """The shipped demo items (kind ``notebook``, ``group`` = base) and their expert labels.

    >>> items, labels = load_demo(dimensions=["model_use"])
    >>> len(items), len(labels), items[0].kind
    (24, 24, 'notebook')
    """
    dims = list(dimensions) if dimensions is not None else list(DIMENSIONS)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise DataError(
            f"demo set has no dimension {unknown[0]!r}; use one of {', '.join(DIMENSIONS)}"
        )
    manifest_path = demo_manifest_path()
    if not manifest_path.is_file():
        raise DataError(
            f"{manifest_path}: demo set missing; reinstall judgealign or run "
            "`python -m judgealign.demo.generator --out` on that folder"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    tasks = {entry["item"]: entry["base"] for entry in manifest["notebooks"]}
    from judgealign.demo.bases import BASES

    items = [
        Item(
            id=name,
            kind="notebook",
            output=(demo_notebooks_dir() / name).read_text(encoding="utf-8"),
            inputs={"task": BASES[base].task},
            group=base,
            path=str(demo_notebooks_dir() / name),
            metadata={"source": "judgealign-demo"},
        )
        for name, base in tasks.items()
    ]
    labels: list[Label] = []
    with demo_labels_path().open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            if record["dimension"] in dims:
                labels.append(Label(**{**record, "score": float(record["score"])}))
    return items, labels
