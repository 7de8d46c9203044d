"""Load and validate rubrics from YAML files or the built-in set."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from judgealign.data.files import read_text
from judgealign.errors import ConfigError
from judgealign.rubric.model import RUBRIC_SCHEMA_VERSION, Rubric

BUILTIN_PACKAGE = "judgealign.rubric.builtin"


def builtin_rubrics() -> list[str]:
    """Names of the rubrics shipped with the package (``ml-notebook``, ...)."""
    files = resources.files(BUILTIN_PACKAGE)
    return sorted(p.name[: -len(".yaml")] for p in files.iterdir() if p.name.endswith(".yaml"))


def _format_validation(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"field {loc}: {err['msg']}"


def rubric_from_dict(data: Any, *, source: str) -> Rubric:
    """Validate a parsed rubric mapping; errors name ``source`` and the field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a rubric must be a YAML mapping with 'id' and 'dimensions'")
    version = data.get("schema_version", RUBRIC_SCHEMA_VERSION)
    if not isinstance(version, int) or version > RUBRIC_SCHEMA_VERSION:
        raise ConfigError(
            f"{source}: schema_version {version!r} is newer than this judgealign supports "
            f"({RUBRIC_SCHEMA_VERSION}); upgrade judgealign"
        )
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_format_validation(exc)}") from None


def load_rubric(name_or_path: str | Path) -> Rubric:
    """Load a built-in rubric by name or a rubric YAML file by path.

    >>> load_rubric("ml-notebook").dimension_ids[0]
    'library_installation'
    """
    text: str
    source = str(name_or_path)
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise ConfigError(
                f"{source}: rubric file not found; give a path or one of "
                f"{', '.join(builtin_rubrics())}"
            )
        text = read_text(path)
    else:
        res = resources.files(BUILTIN_PACKAGE).joinpath(f"{source}.yaml")
        if not res.is_file():
            raise ConfigError(
                f"unknown rubric {source!r}; give a YAML path or one of "
                f"{', '.join(builtin_rubrics())}"
            )
        text = res.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}:{line} is not valid YAML; fix the syntax") from None
    return rubric_from_dict(data, source=source)


def rubric_to_yaml(rubric: Rubric) -> str:
    """Serialize a rubric to YAML that ``load_rubric`` reads back."""
    return yaml.safe_dump(rubric.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
