"""Stress test: do the judges notice flaws planted in real notebooks?

    python bench/stress.py --dry-run                       # the whole path, fake model, ~1 min
    nice python bench/stress.py --limit 4                  # local:default, 104 judgements

Judges: the judge aligned on the demo labels (``src/judgealign/demo/data/aligned-judge.json``,
local:default + local embedder, or ``--aligned FILE``) and its zero-shot twin (the same
model and settings without its memory), side by side on the same notebooks and mutants.

Notebooks: the real ones in ../shared/data/notebooks. The flaw probes aimed at the chosen
dimensions are planted in every notebook first (no model call); a notebook qualifies when at
least one of them applies and shows within the judge's item budget (a change the judge never
sees measures the renderer, not the judge). The qualifying notebooks with the most such
flaws, then the shortest, are kept (``--limit``). Each gets the flaws plus one invariance and
two injection probes (``--others``).

Writes bench/results/stress-notebooks-MODEL.json: per judge and dimension the detection rate,
false-alarm rate and injection shift with 95% bootstrap intervals over notebooks, per probe
the same, the paired aligned-vs-baseline comparisons, how often each probe applied, calls and
time. The run folder (bench/runs/stress-..., resumable) keeps stress.html and the mutants.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED, write_result
from judgealign.data.item import Item
from judgealign.data.items_io import load_items
from judgealign.evaluation.bootstrap import ConfidenceInterval
from judgealign.judge.judge import Judge
from judgealign.judge.persistence import load_judge
from judgealign.progress import progress_for
from judgealign.providers.registry import resolve_embedder, resolve_llm
from judgealign.render import render_item
from judgealign.stress import StressTest, plant, select_probes

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ALIGNED = ROOT / "src" / "judgealign" / "demo" / "data" / "aligned-judge.json"
DIMENSIONS = ("data_imputation", "model_training")
OTHERS = ("rename_variables", "inject_markdown", "inject_fake_close_tag")


def ci(value: ConfidenceInterval | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "estimate": value.estimate,
        "low": value.low,
        "high": value.high,
        "n": value.n,
        "n_groups": value.n_groups,
    }


def choose(
    items: list[Item], dims: list[str], budget: int, limit: int, seed: int
) -> tuple[list[Item], dict[str, list[str]]]:
    """Notebooks where a flaw aimed at one of ``dims`` applies and shows at ``budget`` tokens,
    taken in turn for each dimension (so each gets notebooks), most such flaws first."""
    flaws = [p for p in select_probes("flaw") if p.spec.dimension in dims]
    aimed = {p.name: p.spec.dimension for p in flaws}
    outcomes, mutants = plant(items, flaws, seed)
    by_id = {it.id: it for it in items}
    shown: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for o in outcomes:
        if not o.applied:
            continue
        original = by_id[o.item]
        text = render_item(original, budget_tokens=budget)
        sizes[o.item] = len(text)
        if render_item(mutants[(o.probe, o.item)], budget_tokens=budget) != text:
            shown.setdefault(o.item, []).append(o.probe)
    queues = {
        d: sorted(
            (i for i, ps in shown.items() if any(aimed[p] == d for p in ps)),
            key=lambda i: (-len(shown[i]), sizes[i], i),
        )
        for d in dims
    }
    chosen: list[str] = []
    while len(chosen) < limit and any(queues.values()):
        for d in dims:
            while queues[d] and queues[d][0] in chosen:
                queues[d].pop(0)
            if queues[d] and len(chosen) < limit:
                chosen.append(queues[d].pop(0))
    return [by_id[i] for i in chosen], {i: shown[i] for i in chosen}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--items", type=Path, default=SHARED / "data" / "notebooks")
    ap.add_argument("--aligned", type=Path, default=ALIGNED, help="aligned judge file")
    ap.add_argument("--model", default=None, help="override the judge file's model")
    ap.add_argument("--dimension", action="append", default=None)
    ap.add_argument("--others", default=",".join(OTHERS), help="invariance/injection probes")
    ap.add_argument("--limit", type=int, default=4, help="notebooks")
    ap.add_argument("--item-budget", type=int, default=None, help="default: the judge file's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--cache-dir", type=Path, default=Path(".judgealign-cache"))
    ap.add_argument("--run-dir", type=Path, default=None)
    ap.add_argument("--dry-run", action="store_true", help="fake model and embedder, 2 notebooks")
    args = ap.parse_args()
    if not args.items.exists():
        sys.exit(f"{args.items}: not found (the shared notebooks live in ../shared/data/notebooks)")
    dims = list(args.dimension or DIMENSIONS)
    if args.dry_run:
        from judgealign.rubric import load_rubric

        aligned = Judge(load_rubric("ml-notebook"), model="fake:random", embedder="fake")
        source = "fake:random (dry run)"
        args.limit = min(args.limit, 2)
        digest = ""
    else:
        if not args.aligned.exists():
            sys.exit(
                f"{args.aligned}: no aligned judge; pass --aligned FILE (from `judgealign align` "
                "on the demo labels)"
            )
        aligned = load_judge(args.aligned)
        source = str(args.aligned)
        digest = hashlib.sha256(args.aligned.read_bytes()).hexdigest()
    overrides: dict[str, Any] = {}
    if args.item_budget is not None:
        overrides["item_budget_tokens"] = args.item_budget
    model = args.model or aligned.params.model or "local:default"
    llm = resolve_llm(model, cache_dir=args.cache_dir, concurrency=args.concurrency)
    embedder = (
        resolve_embedder(aligned.params.embedder or "local", cache_dir=args.cache_dir)
        if aligned.memory_ is not None or args.dry_run
        else None
    )
    aligned.set_params(model=llm, **({"embedder": embedder} if embedder else {}), **overrides)
    judges = {"baseline": aligned.ablation("baseline"), "aligned": aligned}
    budget = aligned.item_budget_tokens
    flaws = [p.name for p in select_probes("flaw") if p.spec.dimension in dims]
    others = [p for p in args.others.split(",") if p]
    everything = load_items([args.items])
    t0 = time.monotonic()
    chosen, visible = choose(everything, dims, budget, args.limit, args.seed)
    if not chosen:
        sys.exit(f"no notebook where a flaw on {', '.join(dims)} applies and shows")
    print(f"{len(chosen)} notebooks (visible targeted flaws): {visible}", flush=True)
    tag = "dry-run" if args.dry_run else model.replace(":", "-").replace("/", "-")
    name = f"stress-notebooks-{tag}"
    run_dir = args.run_dir or HERE / "runs" / name
    with progress_for() as progress:
        test = StressTest(
            judges,
            probes=",".join([*flaws, *others]),
            dimensions=dims,
            seed=args.seed,
            run_dir=run_dir,
            concurrency=args.concurrency,
            progress=progress,
            n_resamples=args.resamples,
            name=name,
            sources={"aligned": source, "baseline": f"{source} without its memory"},
        )
        report = test.run(chosen)
    print(report.summary())
    payload: dict[str, Any] = {
        "settings": {
            "model": model,
            "embedder": aligned.params.embedder,
            "aligned_judge": source,
            "aligned_judge_sha256": digest,
            "dimensions": dims,
            "probes": [p.name for p in report.config.probes],
            "notebooks": [it.id for it in chosen],
            "notebook_pool": len(everything),
            "item_budget_tokens": budget,
            "max_tokens": aligned.max_tokens,
            "seed": args.seed,
            "resamples": args.resamples,
        },
        "judges": [j.model_dump() for j in report.config.judges],
        "dimensions": {
            d.judge + "/" + d.dimension: {
                "detection": ci(d.detection),
                "mean_drop": ci(d.mean_drop),
                "collateral": ci(d.collateral),
                "false_alarm_rate": ci(d.false_alarm_rate),
                "injection_shift": ci(d.injection_shift),
            }
            for d in report.dimensions
        },
        "probes": {
            p.judge + "/" + p.probe: {
                "kind": p.kind,
                "dimension": p.dimension,
                "max_score": p.max_score,
                "notebooks": p.notebooks,
                "detection": ci(p.detection),
                "target_change": ci(p.target_change),
                "collateral": ci(p.collateral),
                "false_alarm_rate": ci(p.false_alarm_rate),
                "shift": ci(p.shift),
            }
            for p in report.probes
        },
        "comparisons": [c.model_dump() for c in report.comparisons],
        "applicability": {
            a.probe: {"applied": a.applied, "not": a.not_applicable} for a in report.applicability
        },
        "failed_pairs": sum(1 for p in report.pairs if p.error),
        "hidden_pairs": sum(1 for p in report.pairs if not p.visible),
        "usage": report.usage.model_dump(),
        "wall_seconds": round(time.monotonic() - t0, 1),
        "run_dir": str(run_dir),
        "notes": report.notes,
    }
    if args.dry_run:
        print(f"dry run: nothing written to bench/results (report: {run_dir / 'stress.html'})")
        return
    path = write_result(name, payload)
    print(f"wrote {path}  (report: {run_dir / 'stress.html'})")


if __name__ == "__main__":
    main()
