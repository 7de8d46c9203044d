"""AlignmentMemory: the persisted dual memory (guidelines + episodes, with embeddings).

The file is self-contained: embeddings travel with it (base64 float32 with their shape)
together with the embedder's name, so a saved judge loads and retrieves with no server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import Counter
from collections.abc import Collection
from typing import Annotated, Any, Literal, NamedTuple

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from judgealign.errors import DataError
from judgealign.memory.approximate import EXPANSION_SEARCH
from judgealign.memory.episodic import EpisodeIndex, FloatArray
from judgealign.memory.records import Episode, Guideline
from judgealign.memory.selection import select_guidelines

# 2: a dimension may carry a fitted score blend; an older reader would drop it silently.
# 3: a dimension may carry score calibrations, one per judge variant.
# 4: blends, calibrations and the unaligned judge's episode scores are gone (the experiments
#    left the core); versions 1-3 load with those fields dropped.
# 5: a dimension large enough for approximate retrieval carries its episodes' HNSW graph, so
#    loading it costs no build and every process searches the same graph; versions 1-4 load
#    (the graph is built on first use).
MEMORY_SCHEMA_VERSION = 5
MEMORY_FORMAT = "judgealign.memory"


def _decode_matrix(value: Any) -> FloatArray:
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value, dtype=np.float32)
    elif isinstance(value, dict):
        shape = value.get("shape")
        if value.get("dtype", "float32") != "float32" or not (
            isinstance(shape, list) and len(shape) == 2
        ):
            raise ValueError("a matrix needs dtype float32 and a 2-d shape")
        try:
            raw = base64.b64decode(str(value.get("b64", "")), validate=True)
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"matrix data does not match its shape {shape}: {exc}") from None
    else:
        raise ValueError("expected a matrix {shape, dtype, b64}")
    if arr.ndim != 2:
        raise ValueError("a matrix must be 2-d")
    arr.flags.writeable = False  # persisted memory is frozen, vectors included
    return arr


def _encode_matrix(arr: FloatArray) -> dict[str, Any]:
    data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
    return {"shape": list(arr.shape), "dtype": "float32", "b64": base64.b64encode(data).decode()}


Matrix = Annotated[
    np.ndarray,
    PlainValidator(_decode_matrix),
    PlainSerializer(_encode_matrix, return_type=dict, when_used="json"),
]


def _decode_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64 data: {exc}") from None


Base64Bytes = Annotated[
    bytes,
    PlainValidator(_decode_bytes),
    PlainSerializer(lambda b: base64.b64encode(b).decode(), return_type=str, when_used="json"),
]


def episodes_digest(episodes: tuple[Episode, ...], vectors: FloatArray) -> str:
    """What a saved search graph was built over: the episode ids and their vectors."""
    digest = hashlib.sha256()
    digest.update("\n".join(e.id for e in episodes).encode())
    digest.update(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
    return digest.hexdigest()


class EpisodeGraph(BaseModel):
    """A dimension's HNSW graph over its episodes (usearch's own serialization), the search
    beam its build tuned, and the digest of the episodes it was built over: a graph that
    does not match is rebuilt."""

    model_config = ConfigDict(frozen=True)

    library: Literal["usearch"] = "usearch"
    digest: str
    beam: int = Field(default=EXPANSION_SEARCH, ge=1)  # a graph saved before tuning
    data: Base64Bytes


class DistillFailure(BaseModel):
    """A reflection batch that produced nothing usable (recorded, never fatal)."""

    model_config = ConfigDict(frozen=True)

    dimension: str
    labels: tuple[str, ...]
    error: str


class ReflectionGap(NamedTuple):
    """One dimension's failed reflection batches: how many labels gave no guideline, why."""

    failed_labels: int
    labels: int
    guidelines: int
    error: str


class MemoryContext(NamedTuple):
    """What one judge call gets from memory: guidelines, and (episode, cosine) best first."""

    guidelines: tuple[Guideline, ...]
    episodes: tuple[tuple[Episode, float], ...]


class DimensionMemory(BaseModel):
    """One dimension's guidelines and episodes; row i of a matrix embeds record i."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    guidelines: tuple[Guideline, ...] = ()
    guideline_scores: tuple[float | None, ...] = ()  # the score each guideline implies
    guideline_vectors: Matrix = Field(default_factory=lambda: np.zeros((0, 0), np.float32))
    episodes: tuple[Episode, ...] = ()
    episode_vectors: Matrix = Field(default_factory=lambda: np.zeros((0, 0), np.float32))
    failures: tuple[DistillFailure, ...] = ()
    episode_graph: EpisodeGraph | None = None
    _index: EpisodeIndex | None = PrivateAttr(default=None)
    _digest: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> DimensionMemory:
        if len(self.guideline_scores) != len(self.guidelines):
            raise ValueError("guideline_scores must have one entry per guideline")
        if self.guideline_vectors.shape[0] != len(self.guidelines):
            raise ValueError("guideline_vectors must have one row per guideline")
        if self.episode_vectors.shape[0] != len(self.episodes):
            raise ValueError("episode_vectors must have one row per episode")
        ids = [e.id for e in self.episodes]
        if ids != sorted(set(ids)):
            raise ValueError("episodes must be unique and sorted by id")
        return self

    @property
    def index(self) -> EpisodeIndex:
        if self._index is None:
            graph = self.episode_graph
            saved = (
                (graph.data, graph.beam) if graph is not None and self._graph_matches() else None
            )
            self._index = EpisodeIndex(self.episode_vectors, self.episodes, graph=saved)
        return self._index

    def _episodes_digest(self) -> str:
        if self._digest is None:
            self._digest = episodes_digest(self.episodes, self.episode_vectors)
        return self._digest

    def _graph_matches(self) -> bool:
        graph = self.episode_graph
        return graph is not None and graph.digest == self._episodes_digest()

    def with_graph(self) -> DimensionMemory:
        """This dimension with its search graph attached (built if needed), when its
        retrieval is approximate; unchanged otherwise."""
        if not self.index.approximate or self._graph_matches():
            return self
        saved = self.index.saved_graph()
        if saved is None:  # no usearch here: the reader builds its own
            return self
        graph = EpisodeGraph(digest=self._episodes_digest(), data=saved[0], beam=saved[1])
        return self.model_copy(update={"episode_graph": graph})


class AlignmentMemory(BaseModel):
    """The dual memory of an aligned judge, per rubric dimension.

    >>> import numpy as np
    >>> mem = AlignmentMemory.empty("fake")
    >>> mem.label_ids()
    set()
    >>> AlignmentMemory.from_json(mem.to_json()).embedder
    'fake'
    """

    model_config = ConfigDict(frozen=True)

    format: Literal["judgealign.memory"] = "judgealign.memory"
    schema_version: int = MEMORY_SCHEMA_VERSION
    embedder: str
    dim: int = 0  # embedding width, 0 while empty
    dimensions: dict[str, DimensionMemory] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _widths(self) -> AlignmentMemory:
        for name, dm in self.dimensions.items():
            for m in (dm.guideline_vectors, dm.episode_vectors):
                if m.shape[0] and m.shape[1] != self.dim:
                    raise ValueError(
                        f"dimension {name}: vectors are {m.shape[1]}-d, not {self.dim}"
                    )
        return self

    @classmethod
    def empty(cls, embedder: str) -> AlignmentMemory:
        return cls(embedder=embedder)

    # -- reading ----------------------------------------------------------------------------
    def dimension(self, dimension: str) -> DimensionMemory:
        return self.dimensions.get(dimension) or DimensionMemory()

    def guidelines(self, dimension: str) -> tuple[Guideline, ...]:
        return self.dimension(dimension).guidelines

    def episodes(self, dimension: str) -> tuple[Episode, ...]:
        return self.dimension(dimension).episodes

    def failures(self) -> tuple[DistillFailure, ...]:
        return tuple(f for dm in self.dimensions.values() for f in dm.failures)

    def reflection_gaps(self) -> dict[str, ReflectionGap]:
        """Per dimension whose reflection failed on some labels: how many, and the last error
        (an evaluation report must say when a fold's guidelines came from fewer labels)."""
        return {
            name: ReflectionGap(
                failed_labels=len({lid for fail in dm.failures for lid in fail.labels}),
                labels=len({ep.id for ep in dm.episodes}),
                guidelines=len(dm.guidelines),
                error=dm.failures[-1].error,
            )
            for name, dm in sorted(self.dimensions.items())
            if dm.failures
        }

    def prepare_retrieval(self) -> AlignmentMemory:
        """Build every dimension's search structures now (the HNSW graph of a large memory
        takes seconds to minutes) instead of inside the first judgement that retrieves."""
        for dm in self.dimensions.values():
            dm.index.prepare()
        return self

    def label_ids(self) -> set[str]:
        """Ids of every label in memory (each label is kept as an episode)."""
        return {e.id for dm in self.dimensions.values() for e in dm.episodes}

    def guideline_sources(self) -> dict[str, tuple[str, ...]]:
        """Guideline id -> the label ids it was distilled from (provenance)."""
        return {g.id: g.sources for dm in self.dimensions.values() for g in dm.guidelines}

    def summary(self) -> dict[str, dict[str, int]]:
        """Per dimension: episodes, items, raters, guidelines, failed reflection batches."""
        out: dict[str, dict[str, int]] = {}
        for name in sorted(self.dimensions):
            dm = self.dimensions[name]
            raters = Counter(e.rater for e in dm.episodes)
            out[name] = {
                "episodes": len(dm.episodes),
                "items": len({e.item for e in dm.episodes}),
                "raters": len(raters),
                "guidelines": len(dm.guidelines),
                "failed_batches": len(dm.failures),
            }
        return out

    def context(
        self,
        dimension: str,
        query: np.ndarray,
        *,
        k: int,
        similarity_floor: float,
        max_per_group: int,
        max_guidelines: int,
        guideline_budget_tokens: int,
        exclude_items: set[str],
        exclude_groups: Collection[str] = (),
    ) -> MemoryContext:
        """Guidelines and episodes for judging one item (embedded as ``query``).

        Guidelines: all when they fit ``guideline_budget_tokens`` and ``max_guidelines``,
        else the most relevant (cosine to the query weighted by support). Episodes: see
        ``EpisodeIndex.search``; ``exclude_items`` keeps an item from retrieving itself,
        ``exclude_groups`` its whole input group (a training item scored as if held out).
        """
        dm = self.dimensions.get(dimension)
        if dm is None:
            return MemoryContext((), ())
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if self.dim and q.shape[0] != self.dim:
            raise DataError(
                f"memory of dimension {dimension!r} holds {self.dim}-d embeddings from "
                f"{self.embedder!r} but the query is {q.shape[0]}-d; use embedder {self.embedder!r}"
            )
        chosen = select_guidelines(
            dm.guidelines,
            dm.guideline_vectors,
            q,
            max_guidelines=max_guidelines,
            budget_tokens=guideline_budget_tokens,
        )
        hits = dm.index.search(
            q,
            k=k,
            similarity_floor=similarity_floor,
            max_per_group=max_per_group,
            exclude_items=exclude_items,
            exclude_groups=exclude_groups,
        )
        return MemoryContext(
            tuple(dm.guidelines[i] for i in chosen),
            tuple((dm.episodes[row], sim) for row, sim in hits),
        )

    # -- persistence ------------------------------------------------------------------------
    def to_json(self) -> str:
        """The memory as JSON; a dimension searched approximately carries its graph."""
        dims = {name: dm.with_graph() for name, dm in self.dimensions.items()}
        if all(dims[n] is dm for n, dm in self.dimensions.items()):
            return self.model_dump_json()
        return self.model_copy(update={"dimensions": dims}).model_dump_json()

    @classmethod
    def from_json(
        cls, text: str, *, source: str = "memory", embedder: str | None = None
    ) -> AlignmentMemory:
        """Load a memory; DataError on a corrupt file, a newer schema, or another embedder."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DataError(
                f"{source}: corrupt memory ({exc}); re-run `judgealign align`"
            ) from None
        if not isinstance(data, dict) or data.get("format", MEMORY_FORMAT) != MEMORY_FORMAT:
            raise DataError(f"{source}: not a judgealign memory; re-run `judgealign align`")
        version = data.get("schema_version")
        if not isinstance(version, int) or version > MEMORY_SCHEMA_VERSION:
            raise DataError(
                f"{source}: memory schema version {version!r} is newer than this judgealign "
                f"reads ({MEMORY_SCHEMA_VERSION}); upgrade judgealign"
            )
        try:
            memory = cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise DataError(
                f"{source}: corrupt memory at {where} ({err['msg']}); re-run `judgealign align`"
            ) from None
        if embedder is not None:
            memory.check_embedder(embedder, source=source)
        return memory

    def check_embedder(self, embedder: str, *, source: str = "memory") -> None:
        """Raise DataError unless the memory was built with ``embedder`` (or is empty)."""
        if self.dim and embedder != self.embedder:
            raise DataError(
                f"{source}: memory was built with embedder {self.embedder!r}, not {embedder!r}; "
                f"use --embedder {self.embedder} or re-align"
            )
