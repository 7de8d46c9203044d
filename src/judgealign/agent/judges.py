"""The aligned judges an agent run scores with: one file for every dimension, or one per
dimension (or any split), each dimension served by exactly one judge.

The run keeps a copy of each judge file, so the guidelines and examples a judgement names can
be read later even after the original file was refitted; its hash is part of the run's
settings (a run refuses to resume with a different judge). Judges that name the same model or
embedder share one provider (one local model in memory, one cache, one concurrency limit).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgealign.agent.board import JudgeInfo
from judgealign.errors import ConfigError, DataError
from judgealign.judge.judge import Judge, provider_spec
from judgealign.judge.persistence import save_judge
from judgealign.providers.protocol import Embedder
from judgealign.providers.types import Usage
from judgealign.rubric.model import Rubric

JudgeLike = Judge | str | Path


@dataclass
class JudgeEntry:
    judge: Judge
    source: str
    dimensions: tuple[str, ...]
    file: str = ""
    sha256: str = ""


class JudgeSet:
    """Dimension -> judge, over one rubric.

    >>> from judgealign.rubric import load_rubric
    >>> rubric = load_rubric("ml-notebook")
    >>> js = JudgeSet([Judge(rubric.subset(["model_use"]), model="fake:constant")])
    >>> js.dimensions
    ('model_use',)
    """

    def __init__(self, judges: Sequence[JudgeLike]) -> None:
        from judgealign.judge.persistence import load_judge

        if not judges:
            raise ConfigError("give at least one judge file (--judge judge.json)")
        self.entries: list[JudgeEntry] = []
        served: dict[str, str] = {}
        for given in judges:
            judge = given if isinstance(given, Judge) else load_judge(given)
            source = (
                str(given) if not isinstance(given, Judge) else f"judge {len(self.entries) + 1}"
            )
            dims = tuple(judge.rubric.dimension_ids)
            for d in dims:
                if d in served:
                    raise DataError(
                        f"dimension {d!r} is served by two judges ({served[d]} and {source}); "
                        "give one judge per dimension"
                    )
                served[d] = source
            self.entries.append(JudgeEntry(judge, source, dims))
        rubric_ids = {e.judge.rubric.id for e in self.entries}
        if len(rubric_ids) > 1:
            raise DataError(
                f"the judges score different rubrics ({', '.join(sorted(rubric_ids))}); "
                "give judges of one rubric"
            )
        self._share_providers()

    def _share_providers(self) -> None:
        llms: dict[str, Any] = {}
        embedders: dict[str, Any] = {}
        for e in self.entries:
            spec = provider_spec(e.judge.model)
            if spec is not None:
                if spec not in llms:
                    llms[spec] = e.judge.llm_
                e.judge.set_params(model=llms[spec])
            emb = provider_spec(e.judge.embedder)
            if emb is not None:
                if emb not in embedders:
                    embedders[emb] = e.judge.embedder_
                e.judge.set_params(embedder=embedders[emb])

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(d for e in self.entries for d in e.dimensions)

    @property
    def rubric(self) -> Rubric:
        """The rubric of the dimensions served, in the order the judges list them."""
        base = self.entries[0].judge.rubric
        dims = {d.id: d for e in self.entries for d in e.judge.rubric.dimensions}
        return base.model_copy(update={"dimensions": [dims[d] for d in self.dimensions]})

    def entry(self, dimension: str) -> JudgeEntry:
        for e in self.entries:
            if dimension in e.dimensions:
                return e
        raise DataError(f"no judge serves dimension {dimension!r}")

    def embedder(self) -> Embedder | None:
        """The first judge's embedder (for grouping gap reasons), or None if none has one."""
        for e in self.entries:
            if e.judge.embedder is not None or e.judge.memory_ is not None:
                return e.judge.embedder_
        return None

    def save_copies(self, folder: Path) -> None:
        """Copy each judge file into ``folder`` (a judge object is saved there), and record
        the copies' names and hashes."""
        folder.mkdir(parents=True, exist_ok=True)
        for n, e in enumerate(self.entries, 1):
            source = Path(e.source)
            if source.is_file():
                target = folder / f"{n:02d}-{source.stem[:60]}.json"
            else:  # a judge object: named after the dimensions it serves, when they are few
                name = "-".join(e.dimensions) if len(e.dimensions) <= 2 else "judge"
                target = folder / f"{n:02d}-{name[:60]}.json"
            if source.is_file():
                if not target.exists() or target.read_bytes() != source.read_bytes():
                    shutil.copyfile(source, target)
            else:
                save_judge(e.judge, target)
            e.file = f"{folder.name}/{target.name}"
            e.sha256 = hashlib.sha256(target.read_bytes()).hexdigest()

    def info(self) -> list[JudgeInfo]:
        return [
            JudgeInfo(
                file=e.file,
                sha256=e.sha256,
                model=provider_spec(e.judge.model) or "",
                embedder=provider_spec(e.judge.embedder),
                dimensions=e.dimensions,
                fitted=e.judge.memory_ is not None,
            )
            for e in self.entries
        ]

    def settings(self) -> list[dict[str, Any]]:
        """What a resumed run must find unchanged: each judge's dimensions, memory and
        parameters (the model may be overridden on the command line, so it counts too)."""
        return [
            {
                "dimensions": list(e.dimensions),
                "params": json.loads(e.judge.params.model_dump_json()),
                "memory": None
                if e.judge.memory_ is None
                else hashlib.sha256(e.judge.memory_.to_json().encode()).hexdigest()[:16],
            }
            for e in self.entries
        ]

    def guideline_texts(self, ids: set[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for e in self.entries:
            memory = e.judge.memory_
            if memory is None:
                continue
            for d in e.dimensions:
                for g in memory.guidelines(d):
                    if g.id in ids:
                        out[g.id] = g.text
        return out

    def usage(self) -> Usage:
        total = Usage()
        seen: set[int] = set()
        for e in self.entries:
            llm = e.judge.llm_
            if id(llm) not in seen:
                seen.add(id(llm))
                total = total + getattr(llm, "usage", Usage())
        return total
