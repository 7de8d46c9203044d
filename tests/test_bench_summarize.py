"""bench/summarize.py on small synthetic result files (missing and partial ones included)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_summarize", BENCH / "summarize.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_summarize"] = module
    spec.loader.exec_module(module)
    return module


summarize = _load()


def variant(mae: float, p: float | None = None) -> dict[str, Any]:
    return {"mae": mae, "mae_ci": [mae - 0.1, mae + 0.1], "p_holm": p, "n_scored": 10}


def write(folder: Path, name: str, body: dict[str, Any] | str) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    (folder / f"{name}.json").write_text(text, encoding="utf-8")


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    common = {"data": "summeval_expert", "model": "local:fast", "n_items": 32, "folds": 2}
    write(
        folder,
        "quality-summeval-expert-local-fast",
        {
            **common,
            "created": "2026-11-28T10:00:00+00:00",
            "dimensions": {
                "coherence": {
                    "median_predictor_mae": 0.7,
                    "human_human_mae": None,
                    "baseline": variant(1.2),
                    "full": variant(0.8, 0.004),
                }
            },
            "alignment": {"calls": 4},
            "mean_prompt_tokens": {"baseline": 1500.0, "full": 2100.0},
            "wall_seconds": 900.0,
        },
    )
    write(
        folder,
        "quality-conala-local-fast-expected",
        {
            "data": "conala",
            "model": "local:fast",
            "expected_score": True,
            "dimensions": {"usefulness": {"median_predictor_mae": 1.23, "baseline": variant(1.42)}},
            "answered_score_mae": {"usefulness": {"baseline": 1.558}},
            "examples_mean_mae": {"usefulness": {"mae": 1.361, "n": 80}},
        },
    )
    write(
        folder,
        "memalign-conala-local-fast",
        {"data": "conala", "model": "local:fast", "dimensions": {"usefulness": {}}},
    )
    write(
        folder,
        "memalign-summeval-expert-local-fast",
        {
            **common,
            "dimensions": {
                "coherence": {
                    "median_predictor_mae": 0.7,
                    "baseline": variant(1.3),
                    "memalign": {**variant(1.1), "p_holm": None, "p_value": 0.2},
                }
            },
            "mean_prompt_tokens": {"baseline": 1200.0, "memalign": 5000.0},
            "alignment_calls_per_50_labels": 15.6,
        },
    )
    write(folder, "memalign-x-dry-run", {**common, "dry_run": True, "data": "DRYRUN"})
    write(folder, "throughput", {"delay_seconds": 0.5, "levels": [{"concurrency": 32}]})
    write(folder, "retrieval", {"k": 3, "results": "not a list"})
    write(folder, "broken", "{ not json")
    write(
        folder,
        "cost",
        {
            "ours": {
                "data": "summeval_expert",
                "dimension": "coherence",
                "prompt_tokens_estimate": {
                    "baseline_mean": 1487,
                    "aligned_mean": 2707.4,
                    "ratio": 1.82,
                },
                "alignment_calls_per_50_labels": 2.0,
                "target": "aligned prompt tokens <= 1.5x baseline",
                "target_met": False,
            },
            "budget_sweep": [
                {
                    "k": 2,
                    "episode_budget_tokens": 250,
                    "guideline_budget_tokens": 400,
                    "ratio": 1.43,
                }
            ],
            "relative_budget": [
                {
                    "data": "lfqa_expert_pairwise",
                    "dimension": "prefers_answer_a",
                    "context_ratio": 0.5,
                    "ratio": 1.483,
                    "max_item_ratio": 1.491,
                },
                "not a row",
            ],
        },
    )
    return folder


def test_render_tables_and_tolerates_partial_files(results: Path) -> None:
    text = summarize.render(results)
    row = next(line for line in text.splitlines() if line.startswith("| summeval_expert"))
    assert "coherence" in row and "`local:fast`" in row
    assert "0.800 [0.70, 0.90] p=0.004" in row  # ours, full
    assert "1.100 [1.00, 1.20] p=0.2" in row  # the peer's MemAlign beside ours
    assert "DRYRUN" not in text  # dry runs are not results
    assert "| 32 | - | - | - |" in text  # throughput row with missing fields
    assert "Retrieval latency" not in text  # unusable section skipped, not fatal
    assert "x1.43" in text and "not met" in text
    assert "15.6" in text  # MemAlign calls per 50 labels in the cost table
    assert "| lfqa_expert_pairwise / prefers_answer_a | 0.50 | x1.48 | x1.49 |" in text


def test_expected_score_run_rows(results: Path) -> None:
    lines = summarize.render(results).splitlines()
    answered = next(x for x in lines if x.startswith("| conala") and "answered score" in x)
    # Beside the peer, our answered scores (no argmax run exists), with the references.
    assert "| 1.230 |" in answered and "| 1.558 |" in answered
    expected = next(x for x in lines if x.startswith("| conala") and "expected score" in x)
    assert "| 1.361 |" in expected and "1.420 [1.32, 1.52]" in expected


def test_update_readme_replaces_only_between_markers(results: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# Bench\n\nintro\n\n{summarize.START}\nold table\n{summarize.END}\n\nfooter\n",
        encoding="utf-8",
    )
    summarize.update_readme(readme, results)
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text
    assert text.startswith("# Bench\n\nintro\n")
    assert text.rstrip().endswith("footer")
    assert text.count(summarize.START) == 1 and "## Latest results" in text
    once = text
    summarize.update_readme(readme, results)
    assert readme.read_text(encoding="utf-8") == once  # idempotent


def test_missing_markers_and_empty_results(tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    readme = tmp_path / "README.md"
    readme.write_text("# Bench\n", encoding="utf-8")
    summarize.main(["--results", str(empty), "--readme", str(readme)])
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Bench\n")
    assert summarize.START in text and summarize.END in text
    assert "No results yet" in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "-"), (float("nan"), "-"), ("NaN", "-"), (True, "-"), (3, "3"), (0.12345, "0.123")],
)
def test_num_formats_missing_values(value: object, expected: str) -> None:
    assert summarize.num(value) == expected


def test_blended_run_gets_its_own_row_and_weights(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    dims = {
        "usefulness": {
            "median_predictor_mae": 1.23,
            "baseline": variant(1.425),
            "full": variant(1.223, 0.02),
        }
    }
    body = {"data": "conala", "model": "local:fast", "expected_score": True, "blend": True}
    body |= {"dimensions": dims, "answered_score_mae": {"usefulness": {"full": 1.7}}}
    body |= {"judge_only_mae": {"usefulness": {"full": 1.416, "neighbours": 1.245}}}
    body["blend_weights"] = {"usefulness": [{"judge": 0.05}, {"judge": 0.0}]}
    write(folder, "quality-conala-local-fast-expected-blend", body)
    text = summarize.render(folder)
    assert "`local:fast (expected score, blend)`" in text
    assert (
        "`local:fast` (answered score)" not in text
    )  # a blended run's answers are the judge's own
    row = next(line for line in text.splitlines() if line.startswith("| conala / usefulness"))
    assert "0.05, 0.00" in row and "1.416" in row and "1.245" in row and "1.223" in row


def test_recalibrated_run_lists_each_folds_map(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    dims = {
        "usefulness": {
            "median_predictor_mae": 1.236,
            "baseline": variant(1.234),
            "full": variant(1.08, 0.004),
        }
    }
    folds = [{"intercept": -2.9, "slope": 1.8, "applied": True}] * 3
    folds += [{"intercept": 0.0, "slope": 1.0, "applied": False}]
    body = {"data": "conala", "model": "local:default", "expected_score": True}
    body |= {"recalibrate": True, "dimensions": dims}
    cal = {"folds": folds, "mae_raw": 1.31, "n": 128}
    cal |= {"mae_calibrated_baseline": 0.97, "p_vs_calibrated_baseline": 0.2}
    body["calibrations"] = {"usefulness": {"full": cal}}
    write(folder, "quality-conala-local-default-expected-recal", body)
    text = summarize.render(folder)
    assert "`local:default (expected score, recalibrated)`" in text
    row = next(line for line in text.splitlines() if line.startswith("| conala / usefulness"))
    assert "-2.90+1.80x, -2.90+1.80x, -2.90+1.80x, +0.00+1.00x (off)" in row
    assert "1.310" in row and "1.080" in row and "1.236" in row and "0.970 (p=0.200)" in row


def test_run_without_justifications_is_its_own_row(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    dims = {"accuracy_penalty": {"median_predictor_mae": 0.6, "full": variant(1.2, 0.01)}}
    dims["accuracy_penalty"]["calibrated_baseline_mae"] = 0.875
    base = {"data": "wmt", "model": "local:default", "dimensions": dims}
    write(folder, "quality-wmt-local-default", base | {"rationales": True})
    dims_norat = {"accuracy_penalty": {"median_predictor_mae": 0.6, "full": variant(2.5, 0.3)}}
    norat = base | {"rationales": False, "dimensions": dims_norat}
    write(folder, "quality-wmt-local-default-norat", norat)
    rows = [ln for ln in summarize.render(folder).splitlines() if ln.startswith("| wmt |")]
    assert len(rows) == 2
    assert any("`local:default (no justifications)`" in r and "2.500" in r for r in rows)
    assert any("`local:default` | 0.600 | 0.875 |" in r and "1.200" in r for r in rows)


def test_stress_results_table(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    ci = {"estimate": 0.5, "low": 0.0, "high": 1.0, "n": 4}
    write(
        folder,
        "stress-notebooks-local-default",
        {
            "settings": {"notebooks": ["a", "b"], "model": "local:default", "probes": ["x"]},
            "dimensions": {
                "aligned/model_training": {"detection": ci, "false_alarm_rate": None},
                "baseline/model_training": {"detection": {**ci, "low": float("nan")}},
            },
            "usage": {"calls": 12},
            "wall_seconds": 60,
        },
    )
    text = summarize.render(folder)
    assert "### Stress test" in text and "2 real notebooks" in text
    lines = [ln for ln in text.splitlines() if ln.startswith("| model_training")]
    assert lines[0].startswith("| model_training | baseline | 0.50 n=4 | - |")
    assert "0.50 [0.00, 1.00] n=4" in lines[1]


def test_spark_scale_and_retrieval_sections(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    level = {"executors": 2, "concurrency": 4, "judgements": 320, "ideal_per_second": 16.0,
             "spark_per_second": 12.5, "spark_efficiency": 0.781, "spark_overhead_seconds": 5.6,
             "single_process_per_second": 15.2, "single_process_efficiency": 0.95}  # fmt: skip
    write(folder, "spark_scale", {"delay_seconds": 0.5, "levels": [level, "junk"]})
    row = {"vectors": "topical", "episodes": 100000, "index": "hnsw", "index_build_s": 30.2,
           "median_ms": 0.357, "p95_ms": 0.429, "exact_median_ms": 20.35,
           "recall_at_3": 1.0}  # fmt: skip
    write(folder, "retrieval", {"k": 3, "goals": "median < 2 ms at 100k", "results": [row]})
    text = summarize.render(folder)
    assert "### Spark local mode (server answering after 0.50 s)" in text
    assert "| 2 | 4 | 320 | 16.00 | 12.50 | 0.781 | 5.6 | 15.20 | 0.950 |" in text
    assert "| topical | 100000 | hnsw | 30.2 | 0.357 | 0.429 | 20.350 | 1.0000 |" in text
    assert "Goals: median < 2 ms at 100k." in text
