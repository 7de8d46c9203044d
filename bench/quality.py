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

from _common import RESULTS, LineProgress, peak_rss_mb, write_result
from judgealign.data.ratings import load_ratings, rubric_for_ratings
from judgealign.errors import ParseError
from judgealign.evaluation.experiment import run_evaluation
from judgealign.judge.params import JudgeParams
from judgealign.judge.parse import parse_judgement
from judgealign.judge.persistence import load_judge
from judgealign.report.model import EvaluationReport
from judgealign.rubric import load_rubric
from judgealign.rubric.model import Rubric

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


def argmax_mae(report: EvaluationReport, rubric: Rubric) -> dict[str, dict[str, float]]:
    """MAE of the answered score token per dimension and variant (with --expected-score the
    headline uses the probability-weighted score; peers that only read the answer compare to
    this one)."""
    errors: dict[tuple[str, str], list[float]] = {}
    for r in report.judgements:
        j = r.judgement
        if r.expert is None or j.score is None:
            continue
        scale = rubric.dimension(j.dimension).scale
        try:
            answered, _ = parse_judgement(j.raw, scale)
        except ParseError:
            continue
        if scale.is_na(answered) or scale.is_na(r.expert):
            continue
        errors.setdefault((j.dimension, r.variant), []).append(abs(answered - r.expert))
    out: dict[str, dict[str, float]] = {}
    for (dim, variant), errs in sorted(errors.items()):
        out.setdefault(dim, {})[variant] = round(sum(errs) / len(errs), 4)
    return out


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


def judge_only_mae(report: EvaluationReport) -> dict[str, dict[str, float]]:
    """With --blend: MAE of the judge's own score (before the blend) per blended variant, and
    of the neighbours' expert mean alone, per dimension (the report's blend lines)."""
    out: dict[str, dict[str, float]] = {}
    for b in report.blends:
        row = out.setdefault(b.dimension, {})
        if b.mae_judge_alone is not None:
            row[b.variant] = round(b.mae_judge_alone, 4)
        if b.mae_neighbours_alone is not None:
            # The same neighbours for every blended variant (one memory per fold).
            row["neighbours"] = round(b.mae_neighbours_alone, 4)
    return out


def calibrations(report: EvaluationReport) -> dict[str, dict[str, object]]:
    """With --recalibrate, per dimension and variant: each fold's map (intercept, slope,
    applied) and the held-out MAE of the calibrated scores vs the judge's raw ones."""
    out: dict[str, dict[str, object]] = {}
    for c in report.calibrations:
        out.setdefault(c.dimension, {})[c.variant] = {
            "folds": [
                {"intercept": round(a, 4), "slope": b, "applied": used}
                for a, b, used in zip(c.intercepts, c.slopes, c.applied, strict=True)
            ],
            "mae_calibrated": None if c.mae_calibrated is None else round(c.mae_calibrated, 4),
            "mae_raw": None if c.mae_raw is None else round(c.mae_raw, 4),
            # Calibration alone: the baseline's scores through per-fold maps, and this
            # variant's paired-bootstrap p against it.
            "mae_calibrated_baseline": None
            if c.mae_calibrated_baseline is None
            else round(c.mae_calibrated_baseline, 4),
            "p_vs_calibrated_baseline": c.p_vs_calibrated_baseline,
            "n": c.n,
        }
    return out


def blend_weights(run_dir: Path) -> dict[str, list[dict[str, float | None]]]:
    """Each fold's fitted blend per dimension (weights and training MAEs), from its judge."""
    out: dict[str, list[dict[str, float | None]]] = {}
    for path in sorted((run_dir / "judges").glob("fold-*.judge.json")):
        judge = load_judge(path)
        for dim, b in (judge.memory_.blends() if judge.memory_ else {}).items():
            out.setdefault(dim, []).append(
                {
                    "judge": b.judge,
                    "neighbours": b.neighbours,
                    "median": b.median,
                    "mae": round(b.mae, 4),
                    "mae_heldout": None if b.mae_heldout is None else round(b.mae_heldout, 4),
                    "mae_judge": round(b.mae_judge, 4),
                    "n_labels": b.n_labels,
                }
            )
    return out


def prompt_tokens(report: EvaluationReport) -> dict[str, float]:
    out: dict[str, float] = {}
    for variant in report.config.variants:
        # Cached answers count too (calibrate answers the baseline's requests during fit, so
        # its scoring calls are all cache hits): the endpoint's count from when it answered.
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
    ap.add_argument("--max-guidelines", type=int, default=6)
    ap.add_argument(
        "--reflection-batch-tokens",
        type=int,
        default=3000,
        # A 6,000-token batch made one 0.5B reflection call run >10 min on 2 cores.
        help="labels per reflection call, as a prompt-token budget",
    )
    ap.add_argument(
        "--expected-score",
        action="store_true",
        help="score = probability-weighted mean of the score tokens (backends with logprobs)",
    )
    ap.add_argument(
        "--calibrate",
        action="store_true",
        # Free here: the baseline's answer on a training item is the same request as its
        # held-out baseline judgement in another fold, so it comes from the cache.
        help="run the unaligned judge on training items so reflection sees its misses",
    )
    ap.add_argument(
        "--blend",
        action="store_true",
        help="blend the judge's score with its nearest examples' expert scores and the median "
        "(weights fitted on each fold's training labels; implies --calibrate)",
    )
    ap.add_argument(
        "--recalibrate",
        action="store_true",
        help="map each aligned judge's score onto the experts' with an affine map fitted on its "
        "own leave-group-out scores of the training items (one extra call per training label "
        "and aligned variant)",
    )
    ap.add_argument(
        "--score-first",
        action="store_true",
        help="ask for the score before the rationale (the judge's answer order)",
    )
    ap.add_argument(
        "--base-rates",
        action="store_true",
        help="semantic variants also see how the experts spread their scores (and, with "
        "--calibrate, which way the unaligned judge missed)",
    )
    ap.add_argument(
        "--no-rationales",
        action="store_true",
        help="drop the experts' justifications from the labels (scores only): what they add",
    )
    ap.add_argument("--dimension", action="append", default=None)
    ap.add_argument("--variants", default="baseline,semantic,episodic,full")
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument(
        "--similarity-floor",
        type=float,
        default=0.2,
        help="examples below this cosine are not shown (grouped folds: other inputs' items)",
    )
    ap.add_argument(
        "--context-ratio",
        type=float,
        default=0.5,
        help="memory context at most this fraction of the zero-shot prompt (0.5 -> <= 1.5x)",
    )
    ap.add_argument(
        "--max-tokens",
        type=int,
        default=400,
        # The local grammar caps the rationale at ~2 characters per token of this budget, so
        # 200 keeps a 0.5B judge's rationale to a few sentences (it otherwise rambles to the cap).
        help="answer token budget per judgement",
    )
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
    params = JudgeParams(
        model=args.model,
        embedder=args.embedder,
        k=args.k,
        seed=args.seed,
        reflection_model=args.reflection_model,
        item_budget_tokens=1500,
        # Sized by bench/cost.py: k=2 short episodes and a 400-token guideline budget keep
        # aligned prompts within 1.5x the baseline's (k=3 with 350-token episodes was 1.8x).
        episode_budget_tokens=250,
        guideline_budget_tokens=400,
        use_expected_score=args.expected_score,
        max_tokens=args.max_tokens,
        context_ratio=args.context_ratio,
        similarity_floor=args.similarity_floor,
        calibrate=args.calibrate,
        base_rates=args.base_rates,
        score_first=args.score_first,
        blend=args.blend,
        recalibrate=args.recalibrate,
        max_guidelines=args.max_guidelines,
        reflection_batch_tokens=args.reflection_batch_tokens,
    )
    tag = (
        f"quality-{slug(name)}-{slug(args.model)}"
        + ("-expected" if args.expected_score else "")
        + ("-score-first" if args.score_first else "")
        + ("-blend" if args.blend else "")
        + ("-recal" if args.recalibrate else "")
        + ("-rates" if args.base_rates else "")
        + ("-norat" if args.no_rationales else "")
    )
    run_dir = args.run_dir or RESULTS.parent / "runs" / tag
    t0 = time.perf_counter()
    report = run_evaluation(
        rubric,
        ds.items,
        labels,
        params,
        folds=args.folds,
        variants=[v.strip() for v in args.variants.split(",")],  # type: ignore[misc]
        seed=args.seed,
        run_dir=run_dir,
        cache_dir=args.cache_dir,
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
            "expected_score": args.expected_score,
            "max_guidelines": args.max_guidelines,
            "max_tokens": args.max_tokens,
            "k": args.k,
            "context_ratio": args.context_ratio,
            "similarity_floor": args.similarity_floor,
            "calibrate": args.calibrate,
            "score_first": args.score_first,
            "blend": args.blend,
            "recalibrate": args.recalibrate,
            "base_rates": args.base_rates,
            "rationales": not args.no_rationales,
            "reflection_batch_tokens": args.reflection_batch_tokens,
            "n_items": report.config.n_items,
            "seed": args.seed,
            "dimensions": dims,
            "answered_score_mae": argmax_mae(report, rubric) if args.expected_score else None,
            "judge_only_mae": judge_only_mae(report) if args.blend else None,
            "blend_weights": blend_weights(run_dir) if args.blend else None,
            "calibrations": calibrations(report) if args.recalibrate else None,
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
