"""Save and load an aligned judge as one self-contained, versioned JSON file."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from judgealign import __version__
from judgealign.errors import DataError
from judgealign.judge.judge import Judge
from judgealign.judge.params import JudgeParams, params_from_legacy
from judgealign.rubric.loader import rubric_from_dict

JUDGE_FILE_FORMAT = "judgealign.judge"
# 2: params are the judge's twelve constructor parameters (``variant`` instead of the
#    semantic/episodic switches; experiments and fixed budgets gone). Version 1 still loads.
JUDGE_FILE_VERSION = 2


def judge_to_dict(judge: Judge) -> dict[str, Any]:
    return {
        "format": JUDGE_FILE_FORMAT,
        "schema_version": JUDGE_FILE_VERSION,
        "judgealign_version": __version__,
        "rubric": judge.rubric.model_dump(mode="json"),
        "params": judge.params.model_dump(mode="json"),
        "memory": None if judge.memory_ is None else json.loads(judge.memory_.to_json()),
    }


def save_judge(judge: Judge, path: str | Path) -> Path:
    """Write the judge (rubric, params, guidelines with provenance, episodes with embeddings).

    The write is atomic: a crash never leaves a half-written file in place of a good one.

    >>> save_judge(judge, "judge.json")  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(judge_to_dict(judge)), encoding="utf-8")
    tmp.replace(path)
    return path


def load_judge(path: str | Path, *, tracking_uri: str | None = None, **params: Any) -> Judge:
    """Load a judge file; ``params`` replace stored parameters (``model=`` to score with
    another model, or provider objects to share caches).

    ``path`` may also be an MLflow artifact URI, ``runs:/RUN_ID/judge.json`` (the judge file
    ``judgealign align --mlflow`` logs), read from ``tracking_uri``, else the store
    ``MLFLOW_TRACKING_URI`` names.
    Loading needs no model server: everything, embeddings included, is in the file. Files of
    the first schema load too; an option they used that judgealign no longer has is named in
    a warning (the judge then scores without it).

    >>> judge = load_judge("judge.json", model="openai:gpt-4.1-mini")  # doctest: +SKIP
    >>> judge = load_judge("runs:/0a1b2c3d/judge.json")  # doctest: +SKIP
    """
    from judgealign.data.mlflow_store import downloaded_artifact, is_artifact_uri

    if is_artifact_uri(path):
        with downloaded_artifact(str(path), tracking_uri) as local:
            if local.is_dir():
                local = local / "judge.json"
            return _load_judge_file(local, str(path), **params)
    return _load_judge_file(Path(path), str(path), **params)


def _load_judge_file(path: Path, where: str, **params: Any) -> Judge:
    """Load the file at ``path``; errors name ``where`` (what the user gave)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{where}: judge file not found; create one with `judgealign align`"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{where}: corrupt judge file ({exc}); re-run `judgealign align`") from None
    return judge_from_dict(data, source=where, **params)


def judge_from_dict(data: Any, *, source: str = "judge", **params: Any) -> Judge:
    """The judge a judge file's parsed JSON describes (``load_judge`` without the file: what
    a Spark executor gets from a broadcast); ``source`` names it in errors.

    >>> from judgealign.rubric import load_rubric
    >>> judge = Judge(load_rubric("ml-notebook"), model="fake:mimic")
    >>> judge_from_dict(judge_to_dict(judge)).params == judge.params
    True
    """
    from judgealign.memory.store import AlignmentMemory

    where = source
    if not isinstance(data, dict) or data.get("format") != JUDGE_FILE_FORMAT:
        raise DataError(f"{where}: not a judgealign judge file; create one with `judgealign align`")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > JUDGE_FILE_VERSION:
        raise DataError(
            f"{where}: judge file version {version!r} is newer than this judgealign reads "
            f"({JUDGE_FILE_VERSION}); upgrade judgealign"
        )
    rubric = rubric_from_dict(data.get("rubric"), source=f"{where} (rubric)")
    raw = data.get("params") or {}
    if not isinstance(raw, dict):
        raise DataError(f"{where}: invalid params (not an object); re-run `judgealign align`")
    stored, gone = params_from_legacy(raw)
    if gone:
        warnings.warn(
            f"{where}: fitted with {', '.join(gone)}, which judgealign no longer has; the judge "
            "scores without it (re-run `judgealign align` to refit)",
            UserWarning,
            stacklevel=3,
        )
    try:
        values = JudgeParams.model_validate(stored).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise DataError(
            f"{where}: invalid params ({loc}: {err['msg']}); re-run `judgealign align`"
        ) from None
    values.update(params)
    judge = Judge(rubric, **values)
    memory = data.get("memory")
    if memory is not None:
        judge.memory_ = AlignmentMemory.from_json(json.dumps(memory), source=where)
    return judge
