"""The one way from command-line options to a judge's configuration.

``score``, ``align``, ``evaluate``, ``demo`` and ``bench/quality.py`` all build their judge
here: the same flags mean the same parameters, an option left out keeps the judge file's
value (or the benchmarked default), and a refit says what it changed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from judgealign.errors import ConfigError
from judgealign.judge.judge import Judge, provider_spec
from judgealign.providers.defaults import default_embedder, default_model
from judgealign.providers.registry import resolve_embedder, resolve_llm
from judgealign.rubric.model import Rubric

DEFAULT_CACHE = Path(".judgealign-cache")

ModelOption = Annotated[
    str | None,
    typer.Option(
        help="Judge model provider:model, e.g. openai:gpt-4.1-mini "
        "(default: the embedded local model when installed)"
    ),
]
ReflectionModelOption = Annotated[
    str | None, typer.Option(help="Model that distils guidelines (default: --model)")
]
EmbedderOption = Annotated[
    str | None,
    typer.Option(
        help="Embedder, e.g. openai:text-embedding-3-small "
        "(default: the embedded local embedder when installed)"
    ),
]
KOption = Annotated[
    int | None, typer.Option(help="Expert-scored examples shown per judgement (default: 2)")
]
MaxGuidelinesOption = Annotated[
    int | None, typer.Option(help="Guidelines kept per dimension (default: 6)")
]
ContextRatioOption = Annotated[
    float | None,
    typer.Option(
        help="Memory context at most this fraction of the zero-shot prompt; 0: no cap "
        "(default: 0.5, aligned prompts within 1.5x)"
    ),
]
SimilarityFloorOption = Annotated[
    float | None, typer.Option(help="Examples less similar (cosine) are never shown (default: 0.2)")
]
ItemBudgetOption = Annotated[
    int | None, typer.Option(help="Token budget per rendered item (default: 1500)")
]
MaxTokensOption = Annotated[
    int | None, typer.Option(help="Answer token budget per judgement (default: 400)")
]
SeedOption = Annotated[int | None, typer.Option(help="Seed (default: 0)")]
CacheDirOption = Annotated[Path | None, typer.Option(help="Response cache folder.")]
ConcurrencyOption = Annotated[int, typer.Option(help="Parallel model calls.")]
RetryFailedOption = Annotated[
    bool,
    typer.Option(
        help="On resume, ask again for every failed judgement (provider errors always are)."
    ),
]
MaxFailedOption = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=1.0,
        help="Exit 1 when more than this fraction of judgements failed (always when all did).",
    ),
]

EngineOption = Annotated[
    Literal["local", "spark"],
    typer.Option(
        help="local: this process (asyncio); spark: Spark tasks, each task slot with "
        "--concurrency calls in flight (needs the spark extra of judgealign)."
    ),
]
SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        help="Spark master for --engine spark, e.g. local[4] or spark://host:7077 "
        "(default: the active session's, spark-submit's, else local[*])."
    ),
]

# Every field of JudgeOptions is a Judge parameter of the same name but these: runtime
# settings of the command, and one flag named shorter than its parameter.
_RUNTIME = ("cache_dir", "concurrency")
_RENAMED = {"item_budget": "item_budget_tokens"}


@dataclass(frozen=True)
class JudgeOptions:
    """Judge options as given on a command line; ``None``: not given.

    >>> JudgeOptions(model="fake:mimic", k=3, context_ratio=0).params()
    {'model': 'fake:mimic', 'k': 3, 'context_ratio': None}
    """

    model: str | None = None
    reflection_model: str | None = None
    embedder: str | None = None
    k: int | None = None
    max_guidelines: int | None = None
    context_ratio: float | None = None
    similarity_floor: float | None = None
    item_budget: int | None = None
    max_tokens: int | None = None
    seed: int | None = None
    cache_dir: Path | None = DEFAULT_CACHE
    concurrency: int = 4

    def params(self) -> dict[str, Any]:
        """The Judge parameters these options set (``--context-ratio 0``: no cap)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _RUNTIME or value is None:
                continue
            if f.name == "context_ratio" and value == 0:
                value = None
            out[_RENAMED.get(f.name, f.name)] = value
        return out

    def _llm(self, name: str) -> Any:
        return resolve_llm(name, cache_dir=self.cache_dir, concurrency=self.concurrency)

    def _embedder(self, name: str) -> Any:
        return resolve_embedder(name, cache_dir=self.cache_dir)

    def _providers(self, judge: Judge, *, needs_embedder: bool) -> dict[str, Any]:
        """The judge's provider names resolved with this command's cache and concurrency;
        the defaults (the embedded model) apply only where nothing names one."""
        given = self.params()
        model = given.get("model", provider_spec(judge.model)) or default_model()
        out: dict[str, Any] = {"model": self._llm(model)}
        reflection = given.get("reflection_model", provider_spec(judge.reflection_model))
        if reflection is not None and reflection != model:
            out["reflection_model"] = self._llm(reflection)
        embedder = given.get("embedder", provider_spec(judge.embedder))
        if embedder is None and needs_embedder:
            embedder = default_embedder()
        if embedder is not None:
            out["embedder"] = self._embedder(embedder)
        return out

    def new_judge(self, rubric: Rubric, *, needs_embedder: bool = True) -> Judge:
        """A judge with these options over the defaults, providers resolved."""
        judge = Judge(rubric, **self.params())
        return judge.set_params(**self._providers(judge, needs_embedder=needs_embedder))

    def apply(self, judge: Judge) -> list[str]:
        """Apply the given options to a loaded judge (a refit or a rescoring); returns
        ``name=value`` for each parameter that changed. A different embedder than a fitted
        memory's is refused: its stored vectors are another embedder's."""
        given = self.params()
        if judge.memory_ is not None and "embedder" in given:
            stored = provider_spec(judge.embedder)
            if stored is not None and given["embedder"] != stored:
                raise ConfigError(
                    f"--embedder {given['embedder']} differs from the judge file's {stored}: "
                    "its examples are embedded by that one; align into a new --out instead"
                )
        current = judge.params.model_dump()  # provider names, as a judge file stores them
        changed = [f"{n}={v}" for n, v in given.items() if v != current[n]]
        judge.set_params(**given)
        judge.set_params(**self._providers(judge, needs_embedder=judge.memory_ is not None))
        return changed
