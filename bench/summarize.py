"""Regenerate the "Latest results" section of bench/README.md from bench/results/*.json.

    python bench/summarize.py [--results bench/results] [--readme bench/README.md]

The section between ``<!-- results:start -->`` and ``<!-- results:end -->`` is replaced (or
appended when the markers are missing). Missing, partial or unreadable result files are
skipped or shown as "-", never fatal. Dry-run results (``"dry_run": true``) are ignored.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
START = "<!-- results:start -->"
END = "<!-- results:end -->"
OUR_VARIANTS = ("baseline", "semantic", "episodic", "full")
PEER_VARIANTS = (("baseline", "MLflow baseline"), ("memalign", "MLflow MemAlign"))


def load_results(results: Path) -> dict[str, dict[str, Any]]:
    """``stem -> body`` for every readable JSON object in ``results`` (dry runs left out)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(results.glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(body, dict) and not body.get("dry_run"):
            out[path.stem] = body
    return out


def num(value: Any, digits: int = 3) -> str:
    """A number for a table cell; "-" for missing, NaN or non-numeric values."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    if math.isnan(value) or math.isinf(value):
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def mae_cell(res: Any) -> str:
    """``MAE [low, high] p=...`` from one variant's result block."""
    if not isinstance(res, dict) or num(res.get("mae")) == "-":
        return "-"
    cell = num(res.get("mae"))
    ci = res.get("mae_ci")
    if isinstance(ci, list) and len(ci) == 2 and num(ci[0]) != "-":
        cell += f" [{num(ci[0], 2)}, {num(ci[1], 2)}]"
    p = res.get("p_holm")
    if p is None:
        p = res.get("p_value")
    if num(p) != "-":
        cell += f" p={p:.2g}"
    return cell


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _dims(body: dict[str, Any]) -> dict[str, Any]:
    dims = body.get("dimensions")
    return dims if isinstance(dims, dict) else {}


def _calls(usage: dict[str, Any]) -> int | None:
    """Model calls including cache hits (a resumed run answers some from the cache)."""
    parts = [usage.get(k) for k in ("calls", "cached_calls")]
    nums = [p for p in parts if isinstance(p, int) and not isinstance(p, bool)]
    return sum(nums) if nums else None


def quality_section(results: dict[str, dict[str, Any]]) -> list[str]:
    ours = {k: v for k, v in results.items() if k.startswith("quality-")}
    peers = {k: v for k, v in results.items() if k.startswith("memalign-")}
    keyed: dict[tuple[str, str, str], dict[str, Any]] = {}
    for body in sorted(ours.values(), key=lambda b: bool(b.get("expected_score"))):
        # The expected-score run is its own row; the peer sits beside the argmax run, or
        # beside the expected-score run's answered scores (MAE only) when there is no argmax run.
        notes = [
            n
            for n, on in (
                ("expected score", body.get("expected_score")),
                ("score first", body.get("score_first")),
                ("blend", body.get("blend")),
                ("recalibrated", body.get("recalibrate")),
                ("base rates", body.get("base_rates")),
                ("no justifications", body.get("rationales") is False),
            )
            if on
        ]
        model = str(body.get("model")) + (f" ({', '.join(notes)})" if notes else "")
        examples = body.get("examples_mean_mae") or {}
        for dim, row in _dims(body).items():
            if isinstance(row, dict) and isinstance(examples.get(dim), dict):
                row = {**row, "examples_mean_mae": examples[dim].get("mae")}
            keyed.setdefault((str(body.get("data")), dim, model), {})["ours"] = row
        # A blended run's answered scores are the judge's own; the unblended run shows them.
        answered = {} if body.get("blend") else body.get("answered_score_mae") or {}
        for dim, maes in answered.items() if isinstance(answered, dict) else ():
            plain = keyed.setdefault((str(body.get("data")), dim, str(body.get("model"))), {})
            if "ours" not in plain and isinstance(maes, dict):
                ref = _dims(body).get(dim) or {}
                plain["ours"] = {
                    **{v: {"mae": m} for v, m in maes.items()},
                    "median_predictor_mae": ref.get("median_predictor_mae"),
                    "human_human_mae": ref.get("human_human_mae"),
                }
                plain["answered"] = True
    for body in peers.values():
        for dim, row in _dims(body).items():
            keyed.setdefault((str(body.get("data")), dim, str(body.get("model"))), {})["peer"] = row
    if not keyed:
        return []
    header = ["data", "dimension", "model", "median predictor", "calibrated baseline"]
    header += ["examples' mean", "human-human"]
    header += list(OUR_VARIANTS) + [label for _, label in PEER_VARIANTS]
    rows = []
    for (data, dim, model), parts in sorted(keyed.items()):
        row = parts.get("ours") or {}
        peer = parts.get("peer") or {}
        ref = row if isinstance(row, dict) and row else peer
        mark = " (answered score)" if parts.get("answered") else ""
        cells = [data, dim, f"`{model}`{mark}", num(ref.get("median_predictor_mae"))]
        cells.append(num(ref.get("calibrated_baseline_mae")))
        cells.append(num(row.get("examples_mean_mae")) if isinstance(row, dict) else "-")
        cells.append(num(ref.get("human_human_mae")))
        cells += [mae_cell(row.get(v)) if isinstance(row, dict) else "-" for v in OUR_VARIANTS]
        cells += [
            mae_cell(peer.get(v)) if isinstance(peer, dict) else "-" for v, _ in PEER_VARIANTS
        ]
        rows.append(cells)
    lines = [
        "### Quality: MAE against the experts",
        "",
        "MAE on held-out folds [95% bootstrap CI]; p: paired bootstrap against the same "
        "judge's baseline (Holm-corrected for ours). A judge must beat the median predictor; "
        "calibrated baseline: the baseline's scores through an affine map fitted per fold on "
        "the training labels (scale correction alone, no call; results from before it was "
        "reported show -), which a memory has to beat to claim more than a scale fix; "
        "examples' mean: predicting the mean expert score of the examples the episodic judge "
        "was shown (what retrieval alone knows). `(answered score)`: the expected-score run's "
        "answered score tokens, beside a peer that reads only the answer.",
        "",
        *table(header, rows),
        "",
    ]
    usage_rows = []
    for name, body in sorted({**ours, **peers}.items()):
        mpt = body.get("mean_prompt_tokens") or {}
        align = body.get("alignment") or {}
        usage_rows.append(
            [
                name,
                num(body.get("n_items")),
                num(body.get("folds")),
                num(_calls(align)),
                " / ".join(f"{k} {num(v, 0)}" for k, v in mpt.items()) or "-",
                num(body.get("wall_seconds"), 0),
            ]
        )
    lines += table(
        ["run", "items", "folds", "alignment calls", "mean prompt tokens", "wall s"], usage_rows
    )
    return [*lines, ""]


def blend_section(results: dict[str, dict[str, Any]]) -> list[str]:
    """Blended runs: the fitted weights per fold and what each part alone would score."""
    rows = []
    for name, body in sorted(results.items()):
        if not name.startswith("quality-") or not body.get("blend"):
            continue
        weights = body.get("blend_weights") or {}
        own = body.get("judge_only_mae") or {}
        for dim, row in _dims(body).items():
            folds = [w for w in weights.get(dim) or [] if isinstance(w, dict)]
            judge_w = ", ".join(num(w.get("judge"), 2) for w in folds) or "-"
            mine = own.get(dim) if isinstance(own.get(dim), dict) else {}
            row = row if isinstance(row, dict) else {}
            # The blend applies to full, or to episodic in runs without full.
            variant = "full" if "full" in row else "episodic"
            rows.append(
                [
                    f"{body.get('data')} / {dim}" + ("" if variant == "full" else " (episodic)"),
                    judge_w,
                    num(mine.get(variant)),
                    num(mine.get("neighbours")),
                    num(row.get("median_predictor_mae")),
                    mae_cell(row.get(variant)),
                ]
            )
    if not rows:
        return []
    return [
        "### Score blend (`--blend`)",
        "",
        "The full judge's score (the episodic judge's where marked) stacked with its nearest "
        "examples' expert mean and the label median, weights fitted on each fold's training "
        "labels. Judge weight per fold: how much "
        "the judge adds to what the labels already say (0 = nothing). Full judge alone: the "
        "same judgements before the blend. With a judge weight of 0 the blended score is the "
        "label median and ties the median predictor: a guard against a judge worse than the "
        "labels' base rate, not evidence that the judge learned anything.",
        "",
        *table(
            [
                "data / dimension",
                "judge weight per fold",
                "full judge alone",
                "neighbours alone",
                "median predictor",
                "blended full",
            ],
            rows,
        ),
        "",
    ]


def cost_section(results: dict[str, dict[str, Any]]) -> list[str]:
    body = results.get("cost") or {}
    if not body and not any(k.startswith(("quality-", "memalign-")) for k in results):
        return []
    lines = ["### Cost", ""]
    ours = body.get("ours") or {}
    p = ours.get("prompt_tokens_estimate") or {}
    rows = []
    if ours:
        rows.append(
            [
                f"judgealign ({ours.get('data', '-')}/{ours.get('dimension', '-')}, estimate)",
                num(p.get("baseline_mean"), 0),
                num(p.get("aligned_mean"), 0),
                num(p.get("ratio"), 2),
                num(ours.get("alignment_calls_per_50_labels"), 1),
            ]
        )
    # Read the real-model runs directly (fresher than the copy cost.json took).
    for name, run in sorted(results.items()):
        if not name.startswith(("quality-", "memalign-")):
            continue
        mpt = run.get("mean_prompt_tokens") or {}
        aligned = mpt.get("full", mpt.get("memalign", mpt.get("episodic")))
        base = mpt.get("baseline")
        ratio = aligned / base if num(aligned) != "-" and num(base) != "-" and base else None
        rows.append(
            [
                f"{name} (counted by the endpoint)",
                num(base, 0),
                num(aligned, 0),
                num(ratio, 2),
                num(run.get("alignment_calls_per_50_labels"), 1),
            ]
        )
    lines += table(
        ["judge", "baseline prompt tokens", "aligned prompt tokens", "ratio", "calls / 50 labels"],
        rows,
    )
    target = ours.get("target")
    if target:
        met = ours.get("target_met")
        lines += ["", f"Target: {target}: {'met' if met else 'not met' if met is False else '-'}."]
    sweep = body.get("budget_sweep") or []
    if sweep:
        lines += ["", "Prompt budgets (ours): k, episode / guideline budget, cap -> ratio: "]
        lines[-1] += "; ".join(
            f"k={s.get('k')}, {s.get('episode_budget_tokens')}/{s.get('guideline_budget_tokens')}"
            f", cap {num(s.get('context_ratio'), 2) if s.get('context_ratio') else 'none'}"
            f" -> x{num(s.get('ratio'), 2)}"
            for s in sweep
        )
    relative = [r for r in body.get("relative_budget") or [] if isinstance(r, dict)]
    if relative:
        lines += ["", "Memory context capped at a fraction of the zero-shot prompt (estimate):", ""]
        lines += table(
            ["data / dimension", "context ratio", "mean ratio", "worst item"],
            [
                [
                    f"{r.get('data', '-')} / {r.get('dimension', '-')}",
                    num(r.get("context_ratio"), 2) if r.get("context_ratio") else "none",
                    "x" + num(r.get("ratio"), 2),
                    "x" + num(r.get("max_item_ratio"), 2),
                ]
                for r in relative
            ],
        )
    return [*lines, ""]


def throughput_section(results: dict[str, dict[str, Any]]) -> list[str]:
    body = results.get("throughput")
    levels = body.get("levels") if body else None
    if not isinstance(levels, list) or not levels:
        return []
    rows = [
        [
            num(lv.get("concurrency")),
            num(lv.get("per_second"), 2),
            num(lv.get("ideal_per_second"), 2),
            num(lv.get("efficiency"), 3),
        ]
        for lv in levels
        if isinstance(lv, dict)
    ]
    delay = num(body.get("delay_seconds") if body else None, 2)
    return [
        f"### Throughput (server answering after {delay} s)",
        "",
        *table(["concurrency", "judgements/s", "ideal", "efficiency"], rows),
        "",
    ]


def spark_scale_section(results: dict[str, dict[str, Any]]) -> list[str]:
    body = results.get("spark_scale")
    levels = body.get("levels") if body else None
    if not isinstance(levels, list) or not levels:
        return []
    rows = [
        [
            num(lv.get("executors")),
            num(lv.get("concurrency")),
            num(lv.get("judgements")),
            num(lv.get("ideal_per_second"), 2),
            num(lv.get("spark_per_second"), 2),
            num(lv.get("spark_efficiency"), 3),
            num(lv.get("spark_overhead_seconds"), 1),
            num(lv.get("single_process_per_second"), 2),
            num(lv.get("single_process_efficiency"), 3),
        ]
        for lv in levels
        if isinstance(lv, dict)
    ]
    delay = num(body.get("delay_seconds") if body else None, 2)
    head = ["executors", "concurrency", "judgements", "ideal/s", "Spark/s", "Spark efficiency",
            "Spark overhead s", "one process/s", "one process efficiency"]  # fmt: skip
    return [
        f"### Spark local mode (server answering after {delay} s)",
        "",
        *table(head, rows),
        "",
    ]


def retrieval_section(results: dict[str, dict[str, Any]]) -> list[str]:
    body = results.get("retrieval")
    rows_in = body.get("results") if body else None
    if not isinstance(rows_in, list) or not rows_in:
        return []
    k = num(body.get("k") if body else None)
    rows = [
        [
            str(r.get("vectors", "-")),
            num(r.get("episodes")),
            str(r.get("index", "exact")),
            num(r.get("index_build_s"), 1),
            num(r.get("median_ms"), 3),
            num(r.get("p95_ms"), 3),
            num(r.get("exact_median_ms"), 3),
            num(r.get(f"recall_at_{k}"), 4),
        ]
        for r in rows_in
        if isinstance(r, dict)
    ]
    head = ["vectors", "episodes", "index", "graph build s", "median ms", "p95 ms",
            "exact median ms", f"recall@{k}"]  # fmt: skip
    goals = str(body.get("goals", "")) if body else ""
    return [
        f"### Retrieval latency (top-{k})",
        "",
        *table(head, rows),
        "",
        *([f"Goals: {goals}.", ""] if goals else []),
    ]


def local_model_section(results: dict[str, dict[str, Any]]) -> list[str]:
    body = results.get("local-model")
    models = body.get("models") if body else None
    if not isinstance(models, dict) or not models:
        return []
    rows = []
    for key, m in models.items():
        if not isinstance(m, dict):
            continue
        rows.append(
            [
                f"`local:{key}`",
                str(m.get("model", "-")),
                num(m.get("prompt_tok_s"), 0),
                num(m.get("gen_tok_s_json_grammar", m.get("gen_tok_s_raw")), 1),
                num(m.get("judgement_first_call_seconds"), 1),
                num(m.get("peak_rss_mb")),
            ]
        )
    header = ["name", "model", "prompt tok/s", "gen tok/s", "first judgement s", "peak MB"]
    lines = ["### Local model speed", "", *table(header, rows)]
    emb = body.get("embedder") if body else None
    if isinstance(emb, dict):
        lines += [
            "",
            f"Embedder {emb.get('model', '-')}: {num(emb.get('texts_per_s_256_wordpieces'), 1)} "
            f"texts/s (256 wordpieces), {num(emb.get('texts_per_s_short_sentences'), 0)} "
            "texts/s (short sentences).",
        ]
    return [*lines, ""]


def _timings(body: Any, prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(body, dict):
        for key, value in body.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict | list):
                found += _timings(value, name + ".")
            elif "second" in key and isinstance(value, int | float):
                found.append((name, value))
    elif isinstance(body, list):
        for i, value in enumerate(body):
            found += _timings(value, f"{prefix}{i}.")
    return found


def demo_section(results: dict[str, dict[str, Any]]) -> list[str]:
    rows = []
    for name, body in sorted(results.items()):
        if name.startswith("demo"):
            rows += [[name, key, num(v, 1)] for key, v in _timings(body)[:20]]
    if not rows:
        return []
    return ["### Demo timings", "", *table(["run", "step", "seconds"], rows), ""]


def _ci_cell(value: Any, signed: bool = False) -> str:
    if not isinstance(value, dict) or not value.get("n"):
        return "-"
    fmt = "+.2f" if signed else ".2f"
    est, low, high = value.get("estimate"), value.get("low"), value.get("high")
    bounds = ""
    finite = [v for v in (low, high) if isinstance(v, int | float) and not math.isnan(v)]
    if len(finite) == 2:
        bounds = f" [{low:{fmt}}, {high:{fmt}}]"
    return f"{est:{fmt}}{bounds} n={value['n']}"


def stress_section(results: dict[str, dict[str, Any]]) -> list[str]:
    """bench/stress.py: detection, false alarms and injection shift per dimension and judge."""
    out: list[str] = []
    for name, body in sorted(results.items()):
        if not name.startswith("stress-") or not isinstance(body.get("dimensions"), dict):
            continue
        st = body.get("settings", {})
        if not out:
            out += ["### Stress test: do the judges notice planted flaws?", ""]
        out += [
            f"`{name}`: {len(st.get('notebooks', []))} real notebooks, judge "
            f"`{st.get('model')}`, item budget {st.get('item_budget_tokens')} tokens, probes "
            f"{', '.join(st.get('probes', []))}. Detection: share of flaws whose dimension "
            "fell to the flaw's level; false alarms: share of invariance pairs whose score "
            "moved; injection shift: points towards the score the planted text asks for. "
            "95% intervals over notebooks.",
            "",
        ]
        rows = []
        for key, dims in body["dimensions"].items():
            judge, _, dim = key.partition("/")
            rows.append(
                [
                    dim,
                    judge,
                    _ci_cell(dims.get("detection")),
                    _ci_cell(dims.get("false_alarm_rate")),
                    _ci_cell(dims.get("injection_shift"), signed=True),
                ]
            )
        rows.sort(key=lambda r: (r[0], r[1] != "baseline", r[1]))
        header = ["dimension", "judge", "detection", "false alarms", "injection shift"]
        out += [*table(header, rows), ""]
        usage = body.get("usage", {})
        out += [
            f"{usage.get('calls', '-')} model calls, {num(body.get('wall_seconds'), 0)} s; "
            f"{body.get('failed_pairs', 0)} failed pair(s), {body.get('hidden_pairs', 0)} "
            "hidden by the item budget.",
            "",
        ]
    return out


def calibration_section(results: dict[str, dict[str, Any]]) -> list[str]:
    """Recalibrated runs: each fold's map per variant, and the held-out MAE with and without."""
    rows = []
    for name, body in sorted(results.items()):
        if not name.startswith("quality-") or not body.get("recalibrate"):
            continue
        for dim, by_variant in (body.get("calibrations") or {}).items():
            ref = _dims(body).get(dim) or {}
            for variant, cal in by_variant.items() if isinstance(by_variant, dict) else ():
                maps = ", ".join(
                    f"{f['intercept']:+.2f}{f['slope']:+.2f}x" + ("" if f["applied"] else " (off)")
                    for f in cal.get("folds") or []
                )
                rows.append(
                    [
                        f"{body.get('data')} / {dim}",
                        f"`{body.get('model')}`",
                        variant,
                        maps or "-",
                        num(cal.get("mae_raw")),
                        mae_cell(ref.get(variant)),
                        num(cal.get("mae_calibrated_baseline"))
                        + (
                            f" (p={num(cal.get('p_vs_calibrated_baseline'), 3)})"
                            if cal.get("p_vs_calibrated_baseline") is not None
                            else ""
                        ),
                        num(ref.get("median_predictor_mae")),
                        mae_cell(ref.get("baseline")),
                    ]
                )
    if not rows:
        return []
    return [
        "### Score calibration (`--recalibrate`)",
        "",
        "Each aligned judge's score mapped by `clip(a + b x)`, fitted per fold on that judge's "
        "own scores of the training items with their input group left out of retrieval "
        "(`(off)`: the map did not beat the raw score on inner held-out groups, so it was not "
        "applied). Judge's raw score: the same held-out judgements before the map. A slope "
        "`b` of 0 makes the map a constant: then it ties the median predictor and says the "
        "judge adds nothing. Calibration alone: the baseline's scores through maps fitted per "
        "fold the same way (no memory), with the calibrated variant's paired p against it.",
        "",
        *table(
            [
                "data / dimension",
                "model",
                "variant",
                "map per fold",
                "judge's raw score",
                "calibrated",
                "calibration alone",
                "median predictor",
                "baseline",
            ],
            rows,
        ),
        "",
    ]


def reliability_section(results: dict[str, dict[str, Any]]) -> list[str]:
    body = results.get("reliability")
    if not body:
        return []
    out = [
        "### Reliability (bench/reliability.py)",
        "",
        f"The real command against a fault-injecting server on 127.0.0.1; "
        f"{num(body.get('notebooks'))} notebooks (one hostile) x 2 dimensions, "
        f"--concurrency {num(body.get('concurrency'))}.",
        "",
    ]
    faults = [f for f in body.get("faults") or [] if isinstance(f, dict)]
    if faults:
        rows = []
        for f in faults:
            first, final = f.get("first_run") or {}, f.get("final") or {}
            gap = (
                f"{num(first.get('lost'))} lost"
                if first.get("finished", True)
                else f"{num(first.get('not_reached'))} not reached (run stopped)"
            )
            injected = sum((f.get("faults_injected") or {}).values())
            rows.append(
                [
                    f"{f.get('command')} at {float(f.get('rate') or 0):.0%}",
                    num(injected),
                    f"{num(first.get('produced'))} / {num(first.get('failed_with_reason'))} / "
                    f"{gap}, exit {num(first.get('exit_code'))}",
                    num(f.get("rounds_to_complete")),
                    num(final.get("lost")),
                    f"{num(final.get('same_as_reference'))}/{num(final.get('expected'))}",
                    num((f.get("retry_after") or {}).get("asked_again_too_soon")),
                ]
            )
        out += [
            *table(
                [
                    "run",
                    "faults injected",
                    "first run: produced / failed with reason / lost",
                    "runs to complete",
                    "lost",
                    "same as fault-free",
                    "429s retried too soon",
                ],
                rows,
            ),
            "",
        ]
    kills = [k for k in body.get("kills") or [] if isinstance(k, dict)]
    if kills:
        rows = [
            [
                f"{k.get('command')} {k.get('point')}",
                num(k.get("resume_exit_code")),
                f"{num(k.get('produced'))}/{num(k.get('expected'))}",
                num(k.get("lost")),
                num(k.get("repeated_calls")),
                "yes" if k.get("same_as_reference") else "no",
            ]
            for k in kills
        ]
        out += [
            *table(
                [
                    "kill -9",
                    "resume exit",
                    "produced",
                    "lost",
                    "calls repeated",
                    "same as uninterrupted",
                ],
                rows,
            ),
            "",
        ]
    summary = body.get("summary") or {}
    bad = body.get("bad_inputs") or {}
    facts = [
        f"judgements lost {num(summary.get('judgements_lost'))}",
        f"stored files damaged {num(summary.get('stored_files_damaged'))}",
        f"most calls repeated after a kill {num(summary.get('max_repeated_calls_per_kill'))}",
    ]
    if bad:
        facts.append(
            f"bad inputs with a one-line error and exit 2: {num(bad.get('one_line_exit_2'))}/"
            f"{num(bad.get('cases'))} ({num(bad.get('tracebacks'))} tracebacks)"
        )
    dead = body.get("dead_server") or {}
    if dead:
        facts.append(f"every call refused (401): exit {num(dead.get('exit_code'))}")
    gaps = [f.get("reflection_gaps_left") for f in faults if f.get("command") == "evaluate"]
    if gaps:
        facts.append(f"reflection gaps left after the reruns {num(sum(g or 0 for g in gaps))}")
    if kills:
        torn = sum(1 for k in kills if k.get("torn_record_at_kill"))
        facts.append(f"kills that left a torn record (repaired on resume) {torn}")
        costs = [k.get("scoring_tokens_same") for k in kills if "scoring_tokens_same" in k]
        if costs:
            whole = sum(map(bool, costs))
            facts.append(
                f"resumed evaluations reporting the full scoring cost {whole}/{len(costs)}"
            )
    facts += [
        f"API key found in written files or output: {num(summary.get('secrets_found'))}",
        f"judge prompts carrying the hostile notebook: {num(summary.get('hostile_prompts'))}, "
        f"item block broken: {num(summary.get('hostile_prompts_broken'))}",
    ]
    return [*out, "; ".join(facts) + ".", ""]


def render(results_dir: Path) -> str:
    """The markdown between the markers (without them)."""
    results = load_results(results_dir)
    sections = [
        quality_section(results),
        blend_section(results),
        calibration_section(results),
        cost_section(results),
        throughput_section(results),
        spark_scale_section(results),
        retrieval_section(results),
        local_model_section(results),
        demo_section(results),
        reliability_section(results),
        stress_section(results),
    ]
    body = [line for section in sections for line in section]
    if not body:
        body = ["No results yet: run the benchmarks above, then `python bench/summarize.py`.", ""]
    created = sorted(str(b.get("created")) for b in results.values() if b.get("created"))
    stamp = f"_Generated by bench/summarize.py from {len(results)} result file(s)"
    stamp += f"; newest {created[-1]}_" if created else "_"
    return "\n".join(["## Latest results", "", stamp, "", *body]).rstrip() + "\n"


def update_readme(readme: Path, results_dir: Path) -> str:
    """Replace (or append) the marked section of ``readme``; returns the new text."""
    section = f"{START}\n{render(results_dir)}{END}"
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    start, end = text.find(START), text.find(END)
    if start != -1 and end > start:
        new = text[:start] + section + text[end + len(END) :]
    else:
        new = text.rstrip() + "\n\n" + section + "\n"
    readme.write_text(new, encoding="utf-8")
    return new


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--readme", type=Path, default=HERE / "README.md")
    args = ap.parse_args(argv)
    update_readme(args.readme, args.results)
    print(f"updated {args.readme}")


if __name__ == "__main__":
    main()
