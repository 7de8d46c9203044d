"""Peer comparison: MLflow's own MemAlign on the same folds, model and embedder as ours.

    python bench/memalign_peer.py --data ../shared/data/ratings/summeval_expert.jsonl \
        --dimension coherence --limit 32 --folds 2 --model local:fast --embedder local
    python bench/memalign_peer.py --dry-run     # the whole path with a fake model, ~30 s

SummEval has 16 summaries per article and folds keep an article's summaries together, so two
folds need --limit 32.

The labelled set can also be expert feedback on MLflow traces, read exactly as
``judgealign evaluate --labels mlflow:...`` reads it (same items, labels and grouped folds)::

    python bench/memalign_peer.py --rubric ml-notebook --dimension data_imputation \
        --traces "mlflow:experiment=notebook-agent&map=imputation:data_imputation"

The traces are only read (from --tracking-uri, else MLFLOW_TRACKING_URI): the worker logs its
own copies, with the expert score as HUMAN feedback, into the run folder's SQLite store. Where
several experts labelled a trace, MemAlign gets their mean (its feedback takes one value per
trace) and judgealign's report their individual labels; N/A labels are left out (MemAlign has
no N/A).

Loads the ratings like bench/quality.py (same --limit/--seed/--folds, same grouped folds),
serves the model and embedder over loopback with ``judgealign.serve.ModelServer`` (which also
counts every call and token), and runs bench/_memalign_worker.py inside a separate virtualenv
(``--peer-venv``, created on first use) holding MLflow 3.18 (``make_judge`` +
``MemAlignOptimizer``), DSPy and LiteLLM. Writes bench/results/memalign-NAME-MODEL.json in
the layout of quality.py's result (variants ``baseline`` and ``memalign``). Folds finished
before are skipped and the server caches responses, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, SHARED, peak_rss_mb, write_result
from judgealign.data.folds import grouped_kfold
from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.data.mlflow_traces import read_traces
from judgealign.data.ratings import load_ratings, rubric_for_ratings
from judgealign.evaluation.bootstrap import bootstrap_ci, paired_bootstrap
from judgealign.evaluation.metrics import median_predictor_mae
from judgealign.judge.prompt import render_scale
from judgealign.providers.types import ChatRequest
from judgealign.rubric import load_rubric
from judgealign.rubric.model import Dimension, Rubric
from judgealign.serve import ModelServer
from judgealign.testing.fake import FakeLLM
from quality import BUILTIN, slug

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".peer-venv"
# MemAlign needs mlflow 3.18.0, whose skinny/tracing packages stop at 3.17.2 on the registry:
# install the 3.17.2 dependency set, then mlflow 3.18.0 itself without dependencies.
PEER_INSTALL = (
    ["mlflow-skinny==3.17.2", "mlflow-tracing==3.17.2", "litellm", "dspy", "jinja2"],
    ["sqlalchemy", "alembic", "pandas"],
    ["--no-deps", "mlflow==3.18.0"],
)
CONTEXT_TOKENS = {"local:fast": 8192, "local:default": 8192}


def ensure_peer_venv(venv: Path) -> Path:
    """The peer virtualenv's python, creating and filling the venv on first use."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import mlflow.genai.judges.optimizers.memalign, dspy, litellm"]
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"creating the peer virtualenv {venv} (MLflow, DSPy, LiteLLM; a few minutes)")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for group in PEER_INSTALL:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *group], check=True)
    subprocess.run(check, check=True)
    return python


def fill_schema(schema: dict[str, Any], depth: int = 0) -> Any:
    """A minimal value that satisfies ``schema`` (enums: the middle choice; ids: 0)."""
    if schema.get("enum"):
        values = schema["enum"]
        return values[(len(values) - 1) // 2]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            ints = [o for o in options if o.get("type") == "integer"]
            return fill_schema((ints or options)[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: fill_schema(v, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [fill_schema(schema.get("items", {}), depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return True
    return f"dry-run text {depth}"


def schema_answer(request: ChatRequest) -> str:
    """The dry-run model: a schema-valid JSON answer to any structured request."""
    if request.json_schema is None:
        return '{"result": 3, "rationale": "dry run"}'
    return json.dumps(fill_schema(request.json_schema))


def instructions_for(dim: Dimension, input_names: list[str]) -> str:
    """MLflow judge instructions carrying the same rubric text our judge gets."""
    what = ", ".join(input_names) or "the task"
    parts = [
        f"Score the {dim.name} of the output in {{{{ outputs }}}}, produced for the input "
        f"({what}) in {{{{ inputs }}}}.",
        dim.description,
        "Scale:\n" + render_scale(dim.scale),
    ]
    if dim.guidance.strip():
        parts.append("What to look for: " + dim.guidance.strip())
    parts.append("Be strict: reserve the top score for work with no real flaw.")
    return "\n\n".join(p for p in parts if p.strip())


def from_traces(
    ref: str, rubric_name: str | None, dimension: str | None, tracking_uri: str | None
) -> tuple[str, Rubric, str, list[Item], list[Label]]:
    """(name, rubric, dimension, items, one label per item) from expert feedback on traces."""
    if rubric_name is None:
        sys.exit("--traces needs --rubric (a built-in name or a YAML file) for the dimensions")
    rubric = load_rubric(rubric_name)
    traces = read_traces(ref, rubric, tracking_uri=tracking_uri)
    print(traces.summary())
    dims = [d for d in rubric.dimension_ids if any(lb.dimension == d for lb in traces.labels)]
    dim_id = dimension or (dims[0] if dims else "")
    if dim_id not in dims:
        sys.exit(f"{ref}: no expert label on dimension {dim_id!r}; labelled: {', '.join(dims)}")
    scale = rubric.dimension(dim_id).scale
    by_item: dict[str, list[Label]] = {}
    for lb in traces.labels:
        if lb.dimension == dim_id and not scale.is_na(lb.score):
            by_item.setdefault(lb.item, []).append(lb)
    labels = [
        Label(
            item=item,
            dimension=dim_id,
            score=sum(lb.score for lb in group) / len(group),
            rationale="\n".join(lb.rationale for lb in group if lb.rationale),
            rater="mean" if len(group) > 1 else group[0].rater,
        )
        for item, group in by_item.items()
    ]
    # Every trace labelled on the dimension, N/A-only ones too: the folds are then the ones
    # `judgealign evaluate` draws from the same reference (main leaves N/A-only ones out after).
    on_dim = {lb.item for lb in traces.labels if lb.dimension == dim_id}
    items = [it for it in traces.items if it.id in on_dim]
    name = "mlflow-" + slug(traces.query.experiment or traces.experiment_id)
    return name, rubric, dim_id, items, labels


def _metrics(
    errors: dict[str, list[float]], expert: list[float], resamples: int, seed: int
) -> dict[str, Any]:
    row: dict[str, Any] = {"median_predictor_mae": median_predictor_mae(expert)}
    base = errors["baseline"]
    for variant, errs in errors.items():
        ci = bootstrap_ci(errs, n_resamples=resamples, seed=seed)
        cmp = paired_bootstrap(base, errs, n_resamples=resamples, seed=seed)
        ok = [e for e in errs if not math.isnan(e)]
        row[variant] = {
            "mae": ci.estimate,
            "mae_ci": [ci.low, ci.high],
            "n_scored": len(ok),
            "failed": len(errs) - len(ok),
            "delta_vs_baseline": None if variant == "baseline" else cmp.delta,
            "p_value": None if variant == "baseline" else cmp.p_value,
            "p_holm": None if variant == "baseline" else cmp.p_value,  # one comparison
        }
    return row


def _usage(total: dict[str, float], part: dict[str, Any]) -> None:
    for k, v in part.items():
        total[k] = round(total.get(k, 0) + v, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED / "data/ratings/summeval_expert.jsonl")
    ap.add_argument(
        "--traces",
        default=None,
        help="expert feedback on MLflow traces instead of --data: "
        "mlflow:experiment=NAME[&filter=...][&map=ASSESSMENT:DIMENSION]",
    )
    ap.add_argument("--rubric", default=None, help="rubric for --traces (built-in or YAML)")
    ap.add_argument("--tracking-uri", default=None, help="--traces store: $MLFLOW_TRACKING_URI")
    ap.add_argument("--model", default="local:fast")
    ap.add_argument("--embedder", default="local")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--per-group", type=int, default=None, help="items kept per group")
    ap.add_argument("--dimension", default=None, help="one dimension (default: the first)")
    ap.add_argument("--retrieval-k", type=int, default=5, help="MemAlign's default is 5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--cache-dir", type=Path, default=Path(".judgealign-cache"))
    ap.add_argument("--run-dir", type=Path, default=None)
    ap.add_argument("--peer-venv", type=Path, default=PEER_VENV)
    ap.add_argument(
        "--max-tokens-cap", type=int, default=1024, help="cap on any one answer's tokens"
    )
    ap.add_argument("--dry-run", action="store_true", help="fake model and embedder, 2 folds")
    args = ap.parse_args()
    if args.traces is None and not args.data.exists():
        sys.exit(f"{args.data}: not found (the shared ratings live in ../shared/data/ratings)")
    if args.dry_run:
        args.folds, args.limit = 2, min(args.limit, 32)

    if args.traces is not None:
        name, rubric, dim_id, items, labels = from_traces(
            args.traces, args.rubric, args.dimension, args.tracking_uri
        )
        items = items[: args.limit]
        kept = {it.id for it in items}
        labels = [lb for lb in labels if lb.item in kept]
    else:
        name = args.data.stem
        dims = [args.dimension] if args.dimension else None
        ds = load_ratings(
            args.data, limit=args.limit, dimensions=dims, seed=args.seed, per_group=args.per_group
        )
        dim_id = args.dimension or ds.dimensions[0]
        rubric = (
            load_rubric(BUILTIN[name]) if name in BUILTIN else rubric_for_ratings(ds, args.data)
        )
        labels = [lb for lb in ds.labels if lb.dimension == dim_id]
        labelled = {lb.item for lb in labels}
        items = [it for it in ds.items if it.id in labelled]
    dim = rubric.dimension(dim_id)
    splits = grouped_kfold(items, args.folds, args.seed)
    labelled = {lb.item for lb in labels}
    if len(labelled) < len(items):  # --traces: N/A-only traces are in the folds, not in the runs
        splits = [
            ([i for i in tr if i in labelled], [i for i in te if i in labelled])
            for tr, te in splits
        ]
        items = [it for it in items if it.id in labelled]
    model_tag = "dry-run" if args.dry_run else slug(args.model)
    tag = f"memalign-{slug(name)}-{model_tag}"
    run_dir = args.run_dir or RESULTS.parent / "runs" / tag
    run_dir.mkdir(parents=True, exist_ok=True)

    python = ensure_peer_venv(args.peer_venv)
    llm: Any = FakeLLM("script", handler=schema_answer, name="fake:schema")
    model_name = "fake:schema" if args.dry_run else args.model
    server = ModelServer(
        llm if args.dry_run else args.model,
        "fake" if args.dry_run else args.embedder,
        cache_dir=None if args.dry_run else args.cache_dir,
        max_tokens_cap=args.max_tokens_cap,
    )
    spec = {
        "out_dir": str(run_dir / "folds"),
        "tracking_uri": f"sqlite:///{(run_dir / 'mlflow.db').resolve()}",
        "experiment": tag,
        "model_id": slug(model_name),
        "embedding_id": "fake" if args.dry_run else slug(args.embedder),
        "embedding_dim": 384,
        "context_tokens": CONTEXT_TOKENS.get(args.model, 8192),
        "retrieval_k": args.retrieval_k,
        "max_workers": 1 if args.model.startswith("local") else 8,
        "dimension": {"id": dim.id, "name": dim.name},
        "levels": list(dim.scale.levels),
        "instructions": instructions_for(dim, sorted(items[0].inputs)),
        "items": {it.id: {"inputs": it.inputs, "outputs": it.output} for it in items},
        "labels": [lb.model_dump(mode="json") for lb in labels],
        "folds": [{"train": tr, "test": te} for tr, te in splits],
    }
    t0 = time.perf_counter()
    with server:
        spec["base_url"] = server.base_url
        spec_path = run_dir / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        log = run_dir / "worker.log"
        print(f"serving {server.model_name} at {server.base_url}; worker log: {log}")
        with log.open("a", encoding="utf-8") as fh:
            env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
            proc = subprocess.Popen(
                [str(python), str(HERE / "_memalign_worker.py"), str(spec_path)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
            )
            try:
                rc = proc.wait()
            except BaseException:
                proc.terminate()  # do not leave the worker calling a server that is gone
                proc.wait(timeout=30)
                raise
        served = server.stats()
    wall = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"the MemAlign worker failed (exit {rc}); see {log}")

    expert = {lb.item: lb.score for lb in labels}
    errors: dict[str, list[float]] = {"baseline": [], "memalign": []}
    align_usage: dict[str, float] = {}
    scoring: dict[str, float] = {}
    prompt_tokens: dict[str, list[float]] = {"baseline": [0, 0], "memalign": [0, 0]}
    align_seconds, guidelines, n_train = [], [], []
    for n in range(len(splits)):
        fold = json.loads((run_dir / "folds" / f"fold-{n}.json").read_text(encoding="utf-8"))
        align_seconds.append(fold["alignment_seconds"])
        guidelines.append(len(fold["guidelines"]))
        n_train.append(len(fold["train"]))
        _usage(align_usage, fold["alignment_usage"])
        for variant in errors:
            part = fold[variant]
            _usage(scoring, part["usage"])
            calls = part["usage"]["calls"] + part["usage"]["cached_calls"]
            prompt_tokens[variant][0] += part["usage"]["prompt_tokens"]
            prompt_tokens[variant][1] += calls
            for row in part["judgements"]:
                s = row["score"]
                errors[variant].append(math.nan if s is None else abs(s - expert[row["item"]]))
    row = _metrics(errors, list(expert.values()), args.resamples, args.seed)
    for variant in errors:
        r = row[variant]
        print(
            f"{dim_id} {variant}: MAE {r['mae']:.3f} [{r['mae_ci'][0]:.3f}, "
            f"{r['mae_ci'][1]:.3f}] n={r['n_scored']} failed={r['failed']}"
            + (f" p={r['p_value']:.3g}" if r["p_value"] is not None else "")
        )
    labels_aligned = sum(n_train)
    align_calls = align_usage.get("calls", 0) + align_usage.get("cached_calls", 0)
    payload = {
        "peer": "mlflow MemAlignOptimizer 3.18.0",
        "dry_run": args.dry_run,
        "data": name,
        "traces": args.traces,
        "model": model_name,
        "embedder": "fake" if args.dry_run else args.embedder,
        "folds": args.folds,
        "limit": args.limit,
        "per_group": args.per_group,
        "n_items": len(items),
        "seed": args.seed,
        "retrieval_k": args.retrieval_k,
        "max_tokens_cap": args.max_tokens_cap,
        "variants": ["baseline", "memalign"],
        "dimensions": {dim_id: row},
        "alignment": align_usage,
        "scoring": scoring,
        "served": served.model_dump(mode="json"),
        "mean_prompt_tokens": {v: (t / c if c else None) for v, (t, c) in prompt_tokens.items()},
        "alignment_seconds_per_fold": align_seconds,
        "alignment_calls_per_50_labels": (
            50 * align_calls / labels_aligned if labels_aligned else None
        ),
        "guidelines_per_fold": guidelines,
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "run_dir": str(run_dir),
    }
    if args.dry_run:
        path = run_dir / "result.json"
        path.write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")
    else:
        path = write_result(tag, payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
