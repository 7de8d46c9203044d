"""Quality and cost of baseline vs aligned judges on a real human-rating data set.

    python bench/quality.py --data ../shared/data/ratings/summeval_expert.jsonl \
        --model local:fast --embedder local --folds 4 --limit 40 --dimension coherence

Runs the evaluation pipeline (grouped folds) for baseline, semantic, episodic and full and
writes bench/results/quality-NAME-MODEL.json: per-dimension MAE with CIs, the paired test
against the baseline, the constant-median predictor's MAE (a judge must beat it), the
human-human MAE where raters are available, LLM calls and tokens for alignment and scoring,
wall time. Responses are cached (``--cache-dir``), so a rerun is free and an interrupted run
resumes from its run folder.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, peak_rss_mb, write_result
from judgealign.cli.options import JudgeOptions
from judgealign.data.ratings import load_ratings, rubric_for_ratings
from judgealign.evaluation.experiment import evaluate
from judgealign.progress import LineProgress
from judgealign.report.model import EvaluationReport
from judgealign.rubric import load_rubric

BUILTIN = {
    "summeval_expert": "summeval",
    "topical_chat_usr": "topical-chat",
    "squality_humaneval": "squality",
    "conala_code_grades": "conala",
    "wmt21_ted_mqm_ende": "wmt-mqm",
    "lfqa_expert_pairwise": "lfqa",
}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


def summarize(report: EvaluationReport) -> dict[str, object]:
    dims: dict[str, object] = {}
    for dim in report.config.dimensions:
        ref = next((r for r in report.references if r.dimension == dim), None)
        row: dict[str, object] = {
            "median_predictor_mae": ref.median_predictor_mae if ref else None,
            "calibrated_baseline_mae": ref.calibrated_baseline_mae if ref else None,
            "human_human_mae": ref.human_human_mae if ref else None,
        }
        for variant in report.config.variants:
            res = report.result(variant, dim)
            if res is None:
                continue
            cmp = report.comparison(dim, variant)
            row[variant] = {
                "mae": res.mae.estimate if res.mae else None,
                "mae_ci": [res.mae.low, res.mae.high] if res.mae else None,
                "bias": res.bias.estimate if res.bias else None,
                "qwk": res.qwk,
                "spearman": res.spearman,
                "n_scored": res.n_scored,
                "failed": res.failed,
                "delta_vs_baseline": cmp.delta.estimate if cmp else None,
                "p_value": cmp.p_value if cmp else None,
                "p_holm": cmp.p_holm if cmp else None,
            }
        dims[dim] = row
    return dims


def examples_mean_mae(
    report: EvaluationReport, label_scores: dict[str, float]
) -> dict[str, dict[str, float | int]]:
    """MAE of predicting the mean expert score of the examples the episodic judge was shown
    (the median expert score where it was shown none): what retrieval alone knows. A judge
    that does not beat it is not using its examples."""
    out: dict[str, dict[str, float | int]] = {}
    variant = "episodic" if "episodic" in report.config.variants else "full"
    by_dim: dict[str, list[tuple[float, float | None]]] = {}
    for r in report.judgements:
        if r.variant != variant or r.expert is None:
            continue
        shown = [label_scores[e] for e in r.judgement.episodes if e in label_scores]
        by_dim.setdefault(r.judgement.dimension, []).append(
            (r.expert, sum(shown) / len(shown) if shown else None)
        )
    for dim, rows in by_dim.items():
        experts = sorted(e for e, _ in rows)
        median = experts[len(experts) // 2]
        errs = [abs(e - (p if p is not None else median)) for e, p in rows]
        out[dim] = {
            "mae": round(sum(errs) / len(errs), 4),
            "with_examples": sum(p is not None for _, p in rows),
            "n": len(rows),
        }
    return out


def prompt_tokens(report: EvaluationReport) -> dict[str, float]:
    out: dict[str, float] = {}
    for variant in report.config.variants:
        # Cached answers count too: the endpoint's count from when it answered.
        toks = [
            r.judgement.usage.all_prompt_tokens
            for r in report.judgements
            if r.variant == variant and r.judgement.usage.all_prompt_tokens
        ]
        if toks:
            out[variant] = sum(toks) / len(toks)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="local:fast")
    ap.add_argument("--embedder", default="local")
    ap.add_argument("--reflection-model", default=None)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--per-group", type=int, default=None, help="items kept per group")
    ap.add_argument("--max-guidelines", type=int, default=None)
    ap.add_argument(
        "--no-rationales",
        action="store_true",
        help="drop the experts' justifications from the labels (scores only): what they add",
    )
    ap.add_argument("--dimension", action="append", default=None)
    ap.add_argument("--variants", default="baseline,semantic,episodic,full")
    # Judge options: the same flags and meaning as `judgealign evaluate` (one mapping,
    # judgealign.cli.options); left out, the product default applies.
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--similarity-floor", type=float, default=None)
    ap.add_argument("--context-ratio", type=float, default=None, help="0: no cap")
    ap.add_argument("--max-tokens", type=int, default=None, help="answer budget per judgement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--cache-dir", type=Path, default=Path(".judgealign-cache"))
    ap.add_argument("--run-dir", type=Path, default=None)
    args = ap.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (the shared ratings live in ../shared/data/ratings)")
    name = args.data.stem
    ds = load_ratings(
        args.data,
        limit=args.limit,
        dimensions=args.dimension,
        seed=args.seed,
        per_group=args.per_group,
    )
    labels = ds.labels
    if args.no_rationales:
        # Same labels and folds; reflection and the shown examples see the scores alone.
        labels = [lb.model_copy(update={"rationale": ""}) for lb in labels]
    rubric = load_rubric(BUILTIN[name]) if name in BUILTIN else rubric_for_ratings(ds, args.data)
    rubric = rubric.subset(args.dimension or list(ds.dimensions))
    opts = JudgeOptions(
        model=args.model,
        reflection_model=args.reflection_model,
        embedder=args.embedder,
        k=args.k,
        max_guidelines=args.max_guidelines,
        context_ratio=args.context_ratio,
        similarity_floor=args.similarity_floor,
        max_tokens=args.max_tokens,
        seed=args.seed,
        cache_dir=args.cache_dir,
        concurrency=args.concurrency,
    )
    variants = [v.strip() for v in args.variants.split(",")]
    judge = opts.new_judge(rubric, needs_embedder=any(v != "baseline" for v in variants))
    tag = f"quality-{slug(name)}-{slug(args.model)}" + ("-norat" if args.no_rationales else "")
    run_dir = args.run_dir or RESULTS.parent / "runs" / tag
    t0 = time.perf_counter()
    report = evaluate(
        judge,
        ds.items,
        labels,
        folds=args.folds,
        variants=variants,  # type: ignore[arg-type]
        seed=args.seed,
        run_dir=run_dir,
        concurrency=args.concurrency,
        rater_labels=ds.rater_labels,
        n_resamples=args.resamples,
        name=tag,
        progress=LineProgress(),
    )
    wall = time.perf_counter() - t0
    dims = summarize(report)
    for dim, row in dims.items():
        assert isinstance(row, dict)
        parts = [f"{dim}: median-predictor {row['median_predictor_mae']}"]
        for v in report.config.variants:
            if v in row:
                r = row[v]
                parts.append(
                    f"{v} {r['mae']:.3f} [{r['mae_ci'][0]:.3f}, {r['mae_ci'][1]:.3f}]"
                    + (f" p={r['p_holm']:.3g}" if r["p_holm"] is not None else "")
                )
        print("  ".join(parts))
    path = write_result(
        tag,
        {
            "data": name,
            "model": args.model,
            "embedder": args.embedder,
            "folds": args.folds,
            "limit": args.limit,
            "per_group": args.per_group,
            "judge": judge.params.model_dump(mode="json"),
            "rationales": not args.no_rationales,
            "n_items": report.config.n_items,
            "seed": args.seed,
            "dimensions": dims,
            "examples_mean_mae": examples_mean_mae(report, {lb.id: lb.score for lb in labels}),
            "alignment": report.usage_alignment.model_dump(),
            "scoring": report.usage_scoring.model_dump(),
            "mean_prompt_tokens": prompt_tokens(report),
            "wall_seconds": round(wall, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "run_dir": str(run_dir),
            "notes": report.notes,  # e.g. folds whose reflection failed
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
