"""Runs INSIDE the peer virtualenv (MLflow + DSPy + LiteLLM): MemAlign on the given folds.

    bench/.peer-venv/bin/python bench/_memalign_worker.py SPEC.json

Started by bench/memalign_peer.py, which serves the model over loopback and passes a JSON spec
(items, labels, folds, endpoint). For each fold: log one trace per training item with the
expert score as HUMAN feedback, align with ``MemAlignOptimizer``, then score the held-out items
with the unaligned and the aligned judge. Each fold's result goes to ``OUT/fold-N.json``, so a
rerun skips finished folds (and the server's response cache makes repeated calls free).
Calls and tokens are read from the server's ``/v1/stats`` before and after each phase.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Literal


def _stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url + "/stats", timeout=30) as resp:
        return json.loads(resp.read())["chat"]


def _diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    keys = ("prompt_tokens", "completion_tokens", "calls", "cached_calls", "seconds")
    return {k: round(after[k] - before[k], 3) for k in keys}


def _score(feedback: Any) -> tuple[float | None, str | None, str]:
    if getattr(feedback, "error", None):
        return None, str(feedback.error)[:300], str(getattr(feedback, "rationale", "") or "")
    value = feedback.value
    try:
        return float(value), None, str(feedback.rationale or "")[:500]
    except (TypeError, ValueError):
        return None, f"unparseable value {value!r}", str(feedback.rationale or "")[:500]


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = Path(spec["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    base_url = spec["base_url"]
    # Everything MLflow/LiteLLM would fetch from the internet or queue in the background.
    os.environ.update(
        {
            "OPENAI_API_BASE": base_url,
            "OPENAI_BASE_URL": base_url,
            "OPENAI_API_KEY": "sk-local-no-auth",
            "HOSTED_VLLM_API_BASE": base_url,
            "HOSTED_VLLM_API_KEY": "sk-local-no-auth",
            "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false",
            "MLFLOW_MODEL_CATALOG_URI": "",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "MLFLOW_GENAI_OPTIMIZE_MAX_WORKERS": str(spec.get("max_workers", 8)),
        }
    )
    import dspy
    import litellm
    import mlflow
    from mlflow.entities import AssessmentSource, AssessmentSourceType
    from mlflow.genai.judges import make_judge
    from mlflow.genai.judges.optimizers import MemAlignOptimizer

    # DSPy's disk cache is keyed by model name and text only: a dry run's fake embeddings
    # would be served to a real run. The judgealign server's own cache makes reruns cheap.
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    model_id = spec["model_id"]
    # Without these, LiteLLM assumes a 128k context and MemAlign packs distillation batches
    # that overflow the local model.
    ctx = int(spec["context_tokens"])
    litellm.register_model(
        {
            f"openai/{model_id}": {
                "max_input_tokens": ctx,
                "max_tokens": ctx,
                "max_output_tokens": 2048,
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
                "litellm_provider": "openai",
                "mode": "chat",
            },
            f"hosted_vllm/{spec['embedding_id']}": {
                "max_input_tokens": 512,
                "max_tokens": 512,
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
                "litellm_provider": "hosted_vllm",
                "mode": "embedding",
            },
        }
    )
    mlflow.set_tracking_uri(spec["tracking_uri"])
    mlflow.set_experiment(spec["experiment"])

    dim = spec["dimension"]
    levels = tuple(int(v) for v in spec["levels"])
    judge = make_judge(
        name=dim["id"],
        instructions=spec["instructions"],
        model=f"openai:/{model_id}",
        feedback_value_type=Literal[levels],  # type: ignore[valid-type]
        inference_params={"temperature": 0.0, "max_tokens": spec.get("max_tokens", 400)},
    )
    optimizer = MemAlignOptimizer(
        reflection_lm=f"openai:/{model_id}",
        retrieval_k=int(spec["retrieval_k"]),
        embedding_model=f"hosted_vllm:/{spec['embedding_id']}",
        embedding_dim=int(spec["embedding_dim"]),
    )
    items: dict[str, dict[str, Any]] = spec["items"]
    labels = {lb["item"]: lb for lb in spec["labels"]}

    # One trace per labelled item, logged once and reused by every fold (resumable).
    traces_file = out / "traces.json"
    trace_ids: dict[str, str] = json.loads(traces_file.read_text()) if traces_file.exists() else {}
    for item_id in sorted({i for f in spec["folds"] for i in f["train"]}):
        if item_id in trace_ids:
            continue
        with mlflow.start_span(name="generate") as span:
            span.set_inputs(items[item_id]["inputs"])
            span.set_outputs(items[item_id]["outputs"])
            trace_id = span.trace_id
        lb = labels[item_id]
        mlflow.log_feedback(
            trace_id=trace_id,
            name=dim["id"],
            value=lb["score"],
            rationale=lb.get("rationale") or None,
            source=AssessmentSource(
                source_type=AssessmentSourceType.HUMAN, source_id=lb.get("rater") or "expert"
            ),
        )
        trace_ids[item_id] = trace_id
        traces_file.write_text(json.dumps(trace_ids))

    for n, fold in enumerate(spec["folds"]):
        path = out / f"fold-{n}.json"
        if path.exists():
            print(f"fold {n}: done before, skipped", flush=True)
            continue
        traces = [mlflow.get_trace(trace_ids[i]) for i in fold["train"]]
        s0, t0 = _stats(base_url), time.perf_counter()
        aligned = judge.align(traces=traces, optimizer=optimizer)
        align_seconds = time.perf_counter() - t0
        s1 = _stats(base_url)
        guidelines = [g.guideline_text for g in getattr(aligned, "_semantic_memory", [])]
        print(
            f"fold {n}: aligned on {len(traces)} labels in {align_seconds:.1f}s, "
            f"{len(guidelines)} guidelines",
            flush=True,
        )
        result: dict[str, Any] = {
            "fold": n,
            "train": fold["train"],
            "test": fold["test"],
            "alignment_seconds": round(align_seconds, 2),
            "alignment_usage": _diff(s1, s0),
            "guidelines": guidelines,
        }
        for variant, scorer in (("baseline", judge), ("memalign", aligned)):
            before, started = _stats(base_url), time.perf_counter()
            rows = []
            for item_id in fold["test"]:
                feedback = scorer(
                    inputs=items[item_id]["inputs"], outputs=items[item_id]["outputs"]
                )
                score, error, rationale = _score(feedback)
                rows.append(
                    {"item": item_id, "score": score, "error": error, "rationale": rationale}
                )
            result[variant] = {
                "judgements": rows,
                "usage": _diff(_stats(base_url), before),
                "seconds": round(time.perf_counter() - started, 2),
            }
            ok = sum(r["score"] is not None for r in rows)
            print(f"fold {n}: {variant} scored {ok}/{len(rows)}", flush=True)
        path.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
