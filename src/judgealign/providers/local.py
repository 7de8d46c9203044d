"""The embedded offline LLM: llama.cpp (through llama-cpp-python) on a packaged GGUF model.

``local:default`` is Qwen2.5-Coder-1.5B-Instruct, ``local:fast`` the 0.5B model, and
``local:/path/to/model.gguf`` any GGUF file with a chat template. Structured requests are
decoded under a JSON-schema grammar, so the answer is always valid JSON. Calls that share a
prompt prefix (the same item judged on several dimensions) reuse llama.cpp's KV cache.

>>> llm = local_llm_factory("default", {"n_ctx": "8192"})  # doctest: +SKIP
>>> asyncio.run(llm.complete(request)).text  # doctest: +SKIP
'{"rationale": "...", "score": 2}'
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from judgealign.errors import ConfigError, ProviderError
from judgealign.providers.model_files import MODELS, find_local_model
from judgealign.providers.protocol import LLM
from judgealign.providers.types import ChatRequest, ChatResponse, Message, Usage

INSTALL_HINT = "run `make demo` or `scripts/install-local.sh .venv` (builds llama-cpp-python)"
# The score value starts right after this; the last match wins because rationale comes first.
_SCORE_KEY = re.compile(rb'"score"\s*:\s*$')
_PARAMS = ("n_ctx", "threads", "seed")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def import_llama_cpp() -> Any:
    """Import llama_cpp, or raise ConfigError with the install command.

    OMP_WAIT_POLICY must be set before libgomp loads: with the default (spinning) policy
    idle OpenMP workers burn the cores between matrix ops, so anything sharing the machine
    (the embedder, another process) slows the model down several-fold.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import llama_cpp
    except ImportError as exc:
        raise ConfigError(f"the local LLM needs llama-cpp-python: {INSTALL_HINT}") from exc
    return llama_cpp


def choice_probs(logits: Mapping[str, float]) -> dict[str, float]:
    """Softmax over the choices' logits, i.e. the probabilities renormalized over the choices.

    >>> choice_probs({"1": 0.0, "2": math.log(3.0)})
    {'1': 0.25, '2': 0.75}
    """
    if not logits:
        return {}
    top = max(logits.values())
    if not math.isfinite(top):
        return {c: 1.0 / len(logits) for c in logits}
    weights = {c: math.exp(v - top) if math.isfinite(v) else 0.0 for c, v in logits.items()}
    total = sum(weights.values())
    return {c: w / total for c, w in weights.items()}


def bound_strings(schema: Mapping[str, Any], max_chars: int) -> dict[str, Any]:
    """``schema`` with a ``maxLength`` on every unbounded string property.

    Greedy decoding of a small model can loop inside a free-text field until ``max_tokens``
    runs out, leaving unterminated JSON; a length cap in the grammar forces the string, and
    so the object, to close in time (a token is rarely shorter than 2 characters).

    >>> bound_strings({"type": "object", "properties": {"r": {"type": "string"}}}, 9)
    {'type': 'object', 'properties': {'r': {'type': 'string', 'maxLength': 9}}}
    """
    out = dict(schema)
    if out.get("type") == "string" and "maxLength" not in out and "enum" not in out:
        out["maxLength"] = max_chars
    if isinstance(out.get("properties"), dict):
        out["properties"] = {
            k: bound_strings(v, max_chars) if isinstance(v, dict) else v
            for k, v in out["properties"].items()
        }
    return out


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


class ScoreProbe:
    """Logits processor that records the choices' logits where the ``score`` value starts.

    It sees the raw logits (before the grammar) of every sampled position, rebuilds the
    generated text incrementally and keeps the logits of the last position that follows
    ``"score":`` (and optional whitespace) - the position of the score's first token.
    """

    def __init__(self, choice_tokens: Mapping[str, Sequence[int]], detokenize: Any) -> None:
        self.choice_tokens = choice_tokens
        self.detokenize = detokenize
        self.start: int | None = None
        self.seen = 0
        self.text = b""
        self.logits: dict[str, float] | None = None

    def __call__(
        self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        if self.start is None:
            self.start = len(input_ids)
        else:
            new = [int(t) for t in input_ids[self.start + self.seen :]]
            if new:
                self.text += self.detokenize(new)
                self.seen += len(new)
        if _SCORE_KEY.search(self.text[-64:]):
            self.logits = {
                c: _logsumexp([float(scores[t]) for t in toks])
                for c, toks in self.choice_tokens.items()
            }
        return scores

    def probs(self) -> dict[str, float] | None:
        return None if self.logits is None else choice_probs(self.logits)


class LocalLLM:
    """An LLM served in-process by llama.cpp; one instance serializes its calls.

    >>> llm = LocalLLM(find_local_model("fast"), n_ctx=4096)  # doctest: +SKIP
    >>> llm.name  # doctest: +SKIP
    'local:1d9614638d18...gguf'
    """

    # In-process: a timed-out attempt would keep computing in its thread and its retry would
    # queue behind it, so the managed stack puts no bound on a call (protocol.attempt_timeout).
    attempt_timeout: float | None = None

    def __init__(
        self,
        model_path: Path | str,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        seed: int = 0,
        label: str | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.seed = seed
        self.label = label or str(model_path)
        self._llama: Any = None
        self._formatter: Any = None
        self._grammars: dict[str, Any] = {}
        # llama.cpp is not re-entrant; one worker thread also keeps queued calls from
        # occupying the event loop's default executor.
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        # Prompt tokens of the last call whose KV entries came from the previous call.
        self.last_cached_tokens = 0

    @property
    def name(self) -> str:
        return f"local:{self.label}"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="judgealign-llama")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.complete_sync, request)

    def close(self) -> None:
        """Free the model (it is reloaded on the next call)."""
        with self._lock:
            self._llama = None
            self._grammars.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def complete_sync(self, request: ChatRequest) -> ChatResponse:
        """The blocking call behind ``complete``."""
        with self._lock:
            started = time.perf_counter()
            llama = self._load()
            prompt = self.render(request.messages)
            tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
            n_prompt = len(tokens)
            self.last_cached_tokens = _common_prefix(llama._input_ids, tokens)
            if n_prompt >= self.n_ctx:
                raise ProviderError(
                    f"{self.name}: prompt has {n_prompt} tokens but n_ctx is {self.n_ctx}: "
                    f"use {self.name}?n_ctx={2 ** math.ceil(math.log2(n_prompt + 512))}"
                )
            probe = self._probe(request.score_choices) if request.score_choices else None
            kwargs: dict[str, Any] = {
                "max_tokens": request.max_tokens or (self.n_ctx - n_prompt),
                "temperature": request.temperature,
                "seed": self.seed if request.seed is None else request.seed,
                "repeat_penalty": 1.0,
                "stop": [self._formatter.eos_token] if self._formatter.eos_token else None,
            }
            if request.json_schema is not None:
                cap = max(80, 2 * (int(kwargs["max_tokens"]) - 40))
                kwargs["grammar"] = self._grammar(bound_strings(request.json_schema, cap))
            if probe is not None:
                kwargs["logits_processor"] = self._llama_cpp().LogitsProcessorList([probe])
            try:
                out = llama.create_completion(prompt, **kwargs)
            except (ValueError, RuntimeError) as exc:
                raise ProviderError(f"{self.name}: llama.cpp failed: {exc}") from exc
            choice = out["choices"][0]
            usage = out.get("usage", {})
            return ChatResponse(
                text=choice["text"].strip(),
                model=self.name,
                usage=Usage(
                    prompt_tokens=int(usage.get("prompt_tokens", n_prompt)),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                    calls=1,
                    seconds=time.perf_counter() - started,
                ),
                finish_reason=choice.get("finish_reason"),
                score_probs=probe.probs() if probe is not None else None,
            )

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text of ``messages`` under the model's own chat template."""
        self._load()
        return str(
            self._formatter(
                messages=[{"role": m.role, "content": m.content} for m in messages]
            ).prompt
        )

    def _llama_cpp(self) -> Any:
        return import_llama_cpp()

    def _load(self) -> Any:
        if self._llama is not None:
            return self._llama
        llama_cpp = import_llama_cpp()
        from llama_cpp import llama_chat_format

        threads = self.n_threads or available_cores()
        try:
            llama = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                seed=self.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot load GGUF model {self.model_path}: {exc}") from exc
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(
                f"GGUF model {self.model_path} has no chat template: use an instruct model"
            )
        model = llama._model
        eos, bos = llama.token_eos(), llama.token_bos()
        self._formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
        )
        self._llama = llama
        return llama

    def _grammar(self, schema: Mapping[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            grammar_cls = self._llama_cpp().LlamaGrammar
            try:
                # The grammar fixes the key order: keep the schema's own (rationale before
                # score, text before sources), not the sorted order of the cache key.
                self._grammars[key] = grammar_cls.from_json_schema(
                    json.dumps(schema), verbose=False
                )
            except (ValueError, RuntimeError) as exc:
                raise ProviderError(f"{self.name}: JSON schema not supported: {exc}") from exc
        return self._grammars[key]

    def _probe(self, choices: Sequence[str]) -> ScoreProbe | None:
        llama = self._llama
        tokens = choice_first_tokens(
            choices,
            lambda text: llama.tokenize(text.encode("utf-8"), add_bos=False, special=False),
            llama.detokenize,
        )
        return None if tokens is None else ScoreProbe(tokens, llama.detokenize)


def choice_first_tokens(
    choices: Sequence[str],
    tokenize: Callable[[str], Sequence[int]],
    detokenize: Callable[[Sequence[int]], bytes],
) -> dict[str, list[int]] | None:
    """Each choice's possible first tokens, or None when they do not tell the choices apart.

    A tokenizer that splits digits ("10" -> "1", "0") gives "1" and "10".."19" one first
    token: the probabilities read there would credit "1" with the mass of "12", so a 0-25
    scale gets no expected score (the answered score stands) rather than a wrong one.

    >>> pieces = {"1": [1], " 1": [9, 1], "2": [2], " 2": [9, 2], "10": [1, 0], " 10": [9, 1, 0]}
    >>> detok = lambda toks: b" " if list(toks) == [9] else b"x"
    >>> choice_first_tokens(["1", "2"], pieces.__getitem__, detok)
    {'1': [1], '2': [2]}
    >>> choice_first_tokens(["1", "2", "10"], pieces.__getitem__, detok) is None
    True
    """
    tokens: dict[str, list[int]] = {}
    owner: dict[int, str] = {}
    for choice in choices:
        # The score may follow the colon directly or after a space token merged into it.
        firsts = set()
        for text in (choice, " " + choice):
            toks = list(tokenize(text))
            # A bare space token before the digits: the first real token is the next one.
            start = 1 if len(toks) > 1 and not detokenize(toks[:1]).strip() else 0
            if toks[start:]:
                firsts.add(int(toks[start]))
        for tok in firsts:
            if owner.setdefault(tok, choice) != choice:
                return None
        tokens[choice] = sorted(firsts)
    return {c: t for c, t in tokens.items() if t}


def _common_prefix(previous: Sequence[int], tokens: Sequence[int]) -> int:
    n = 0
    for a, b in zip(previous, tokens, strict=False):
        if int(a) != int(b):
            break
        n += 1
    return n


def _int_param(params: Mapping[str, str], key: str, default: int | None) -> int | None:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"local model parameter {key}={raw!r} must be an integer") from None
    if value <= 0 and key != "seed":
        raise ConfigError(f"local model parameter {key}={raw!r} must be positive")
    return value


def local_llm_factory(model: str, params: dict[str, str]) -> LLM:
    """``local:<default|fast|path>?n_ctx=8192&threads=2&seed=0`` -> a ready LocalLLM.

    >>> llm = local_llm_factory("fast", {"threads": "2"})  # doctest: +SKIP
    """
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise ConfigError(
            f"unknown local model parameter(s) {', '.join(unknown)}: use {', '.join(_PARAMS)}"
        )
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError(f"the local LLM needs llama-cpp-python: {INSTALL_HINT}")
    key = model.removeprefix("local:") or "default"
    path = find_local_model(key)
    return LocalLLM(
        path,
        n_ctx=_int_param(params, "n_ctx", 8192) or 8192,
        n_threads=_int_param(params, "threads", None),
        seed=_int_param(params, "seed", 0) or 0,
        label=key if key in MODELS else str(path),
    )
