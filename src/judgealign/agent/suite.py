"""Test-case suites: what an agent is asked to build, on which data, judged on what.

A suite is a YAML file (``name``, ``description``, optional ``rubric`` and ``defaults``, then
``cases``) or a JSONL file with one case a line. Dataset files are named relative to the suite
file and must exist; an agent sees them as ``data/<file name>`` in its working folder, and the
prompt it gets describes each (rows, columns, the first rows) unless the case says otherwise.
Everything is checked on load: a bad suite is one error naming the file, the case and the fix.

>>> suite = load_suite("example")
>>> (suite.name, len(suite.cases), suite.cases[0].task)
('example', 12, 'classification')
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from judgealign.data.files import lines, loads_json, read_text
from judgealign.errors import DataError

SUITE_SCHEMA_VERSION = 1
EXAMPLE_SUITE = "example"
TaskType = Literal["classification", "regression", "forecasting", "other"]
# Case ids name folders in a run (notebooks/<case>/1.ipynb) and appear in shell commands.
CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
_SUITE_KEYS = {"schema_version", "name", "description", "rubric", "defaults", "cases"}
_DEFAULT_KEYS = {"notebooks", "timeout", "dimensions", "tags"}
# A prompt's data section shows at most this many characters of one file's first rows.
SAMPLE_CHARS = 2000


class Dataset(BaseModel):
    """The data of a case: ``files`` shipped beside the suite, and/or a ``name`` the agent
    resolves itself (``sklearn:california_housing``, a table in a warehouse). ``columns``
    (name -> type or meaning) and ``description`` are passed to the agent; ``sample_rows``
    first rows of each CSV file are shown in the prompt (0: none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    files: tuple[str, ...] = ()
    name: str | None = None
    description: str = ""
    columns: dict[str, str] = Field(default_factory=dict)
    sample_rows: int = Field(5, ge=0, le=50)

    @field_validator("files")
    @classmethod
    def _relative(cls, files: tuple[str, ...]) -> tuple[str, ...]:
        for f in files:
            if not f.strip() or Path(f).is_absolute() or ".." in Path(f).parts:
                raise ValueError(
                    f"{f!r} must be a path relative to the suite file, inside its folder"
                )
        names = [Path(f).name for f in files]
        if len(set(names)) != len(names):
            raise ValueError("two files share a file name; the agent sees them all in data/")
        return files


class AgentCase(BaseModel):
    """One test case: the user ``prompt`` naming an ML ``task`` on a ``dataset``.

    ``dimensions`` lists the rubric dimensions that apply (default: every dimension the judges
    serve); ``notebooks`` is how many notebooks the agent writes for it; ``timeout`` (seconds)
    bounds each generation and overrides the run's.

    >>> AgentCase(id="c1", prompt="Predict churn.", task="classification",
    ...           dataset={"name": "my-warehouse.churn"}).notebooks
    1
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=CASE_ID_PATTERN)
    prompt: str = Field(min_length=1)
    task: TaskType
    dataset: Dataset
    tags: tuple[str, ...] = ()
    dimensions: tuple[str, ...] | None = None
    notebooks: int = Field(1, ge=1, le=100)
    timeout: float | None = Field(None, gt=0)

    @field_validator("dataset")
    @classmethod
    def _some_data(cls, dataset: Dataset) -> Dataset:
        if not dataset.files and not dataset.name:
            raise ValueError("give files (relative to the suite) or a name the agent resolves")
        return dataset

    @property
    def task_text(self) -> str:
        """What a judge is told the notebook was asked to do: the prompt, and the dataset's
        description (whether values are missing decides whether imputation applies), without
        the data sample the agent also got.

        >>> AgentCase(id="c", prompt="Predict y.", task="other",
        ...           dataset={"name": "t", "description": "No missing values."}).task_text
        'Predict y.\\n\\nData: No missing values.'
        """
        about = self.dataset.description.strip()
        return self.prompt.strip() + (f"\n\nData: {about}" if about else "")

    @property
    def all_tags(self) -> tuple[str, ...]:
        """The case's tags with its task type first (every case has one)."""
        return tuple(dict.fromkeys((self.task, *self.tags)))


class AgentSuite(BaseModel):
    """A validated suite; ``root`` is the folder its dataset files are relative to.

    >>> suite = load_suite("example").select(["sales-brief"])
    >>> suite.cases[0].notebooks, suite.data_files(suite.cases[0])[0].name
    (2, 'monthly_sales_small.csv')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SUITE_SCHEMA_VERSION
    name: str = Field(min_length=1)
    description: str = ""
    rubric: str | None = None
    cases: tuple[AgentCase, ...]
    root: str = "."
    source: str = ""
    # The digest of every case as loaded: a selection (``select``) keeps it, so a run folder
    # can grow from a few cases to the whole suite while refusing a suite that changed.
    loaded_digest: str = ""

    def case(self, case_id: str) -> AgentCase:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise DataError(
            f"{self.source or self.name}: no case {case_id!r}; "
            f"cases are {', '.join(c.id for c in self.cases[:6])}"
            + (", ..." if len(self.cases) > 6 else "")
        )

    def data_files(self, case: AgentCase) -> list[Path]:
        """The case's dataset files, absolute."""
        return [Path(self.root) / f for f in case.dataset.files]

    def select(self, case_ids: Sequence[str] = (), limit: int | None = None) -> AgentSuite:
        """The suite restricted to ``case_ids`` (in suite order) and/or its first ``limit``."""
        cases = [self.case(i) for i in dict.fromkeys(case_ids)] if case_ids else list(self.cases)
        if case_ids:
            order = {c.id: n for n, c in enumerate(self.cases)}
            cases.sort(key=lambda c: order[c.id])
        if limit is not None:
            cases = cases[:limit]
        return self.model_copy(update={"cases": tuple(cases)})

    def digest(self) -> str:
        """A hash of the cases and the bytes of their data files: a run folder refuses to
        resume against a suite that changed under it."""
        h = hashlib.sha256()
        body = [c.model_dump(mode="json") for c in self.cases]
        h.update(json.dumps(body, sort_keys=True).encode())
        for c in self.cases:
            for path in self.data_files(c):
                h.update(path.name.encode())
                h.update(hashlib.sha256(path.read_bytes()).digest())
        return h.hexdigest()[:16]

    def prompt_for(self, case: AgentCase) -> str:
        """The full prompt the agent gets: the case's prompt, then its data section."""
        return case.prompt.strip() + "\n\n" + data_section(case, self.data_files(case))


def data_section(case: AgentCase, files: Sequence[Path]) -> str:
    """What the agent is told about the data: where the files are, their size, columns and
    first rows (CSV), or the name to resolve."""
    d = case.dataset
    out = ["## Data"]
    if d.description:
        out.append(d.description.strip())
    if d.name:
        out.append(f"Dataset name: {d.name} (resolve it yourself).")
    for path in files:
        out.append(_describe_file(path, d.sample_rows))
    if d.columns:
        out.append("Columns:\n" + "\n".join(f"- {k}: {v}" for k, v in d.columns.items()))
    return "\n\n".join(out) + "\n"


def _describe_file(path: Path, sample_rows: int) -> str:
    shown = f"data/{path.name}"
    if path.suffix.lower() not in (".csv", ".tsv"):
        return f"File: {shown} ({path.stat().st_size} bytes)"
    text = path.read_text(encoding="utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(text), delimiter="\t" if path.suffix == ".tsv" else ","))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    head = "\n".join(text.splitlines()[: 1 + sample_rows])[:SAMPLE_CHARS]
    about = f"File: {shown} ({len(body)} rows x {len(header)} columns: {', '.join(header)})"
    return about + (f"\nFirst rows:\n```\n{head}\n```" if sample_rows else "")


def example_suite_path() -> Path:
    """The shipped example suite (12 cases over small datasets in the package).

    >>> example_suite_path().name
    'suite.yaml'
    """
    return Path(__file__).resolve().parent / "examples" / "suite.yaml"


def _error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"field {loc}: {msg}"


def _case(raw: Any, defaults: dict[str, Any], where: str) -> AgentCase:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: a case must be a mapping with id, prompt, task and dataset")
    data = {**defaults, **raw}
    if isinstance(data.get("tags"), str):
        data["tags"] = [data["tags"]]
    try:
        return AgentCase.model_validate(data)
    except ValidationError as exc:
        raise DataError(f"{where}: {_error(exc)}; fix the suite file") from None


def _check(cases: Iterable[tuple[AgentCase, str]], root: Path) -> list[AgentCase]:
    seen: dict[str, str] = {}
    out = []
    for case, where in cases:
        if case.id in seen:
            raise DataError(f"{where}: duplicate case id {case.id!r} (also {seen[case.id]})")
        seen[case.id] = where
        for f in case.dataset.files:
            if not (root / f).is_file():
                raise DataError(
                    f"{where}: dataset file {f} not found in {root}; ship it beside the suite"
                )
        out.append(case)
    return out


def _from_yaml(path: Path, text: str) -> AgentSuite:
    try:
        # libyaml's loader where PyYAML was built with it: a suite of hundreds of cases.
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise DataError(f"{path}:{line} is not valid YAML; fix the syntax") from None
    if isinstance(data, list):
        data = {"cases": data}
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise DataError(f"{path}: a suite is a mapping with a 'cases' list (or a list of cases)")
    unknown = sorted(set(data) - _SUITE_KEYS)
    if unknown:
        raise DataError(f"{path}: unknown suite field(s) {', '.join(unknown)}")
    version = data.get("schema_version", SUITE_SCHEMA_VERSION)
    if not isinstance(version, int) or version > SUITE_SCHEMA_VERSION:
        raise DataError(
            f"{path}: schema_version {version!r} is newer than this judgealign reads "
            f"({SUITE_SCHEMA_VERSION}); upgrade judgealign"
        )
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - _DEFAULT_KEYS:
        raise DataError(f"{path}: defaults may set only {', '.join(sorted(_DEFAULT_KEYS))}")
    cases = [
        (_case(raw, defaults, f"{path}: case {n} ({_id(raw)})"), f"{path}: case {n}")
        for n, raw in enumerate(data["cases"], 1)
    ]
    return _suite(path, data, _check(cases, path.parent))


def _id(raw: Any) -> str:
    return str(raw.get("id", "no id")) if isinstance(raw, dict) else "not a mapping"


def _from_jsonl(path: Path) -> AgentSuite:
    cases = []
    for number, line in lines(path):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        raw = loads_json(line, where, "one case object per line")
        cases.append((_case(raw, {}, where), where))
    return _suite(path, {}, _check(cases, path.parent))


def _suite(path: Path, data: dict[str, Any], cases: list[AgentCase]) -> AgentSuite:
    if not cases:
        raise DataError(f"{path}: the suite has no cases")
    rubric = data.get("rubric")
    if rubric is not None:
        _check_dimensions(path, str(rubric), cases)
    try:
        suite = AgentSuite(
            name=str(data.get("name") or path.stem),
            description=str(data.get("description") or ""),
            rubric=data.get("rubric"),
            cases=tuple(cases),
            root=str(path.parent.resolve()),
            source=str(path),
        )
    except ValidationError as exc:
        raise DataError(f"{path}: {_error(exc)}") from None
    return suite.model_copy(update={"loaded_digest": suite.digest()})


def _check_dimensions(path: Path, rubric_name: str, cases: Sequence[AgentCase]) -> None:
    """Case dimensions must exist in the suite's rubric (a typo would silently score nothing)."""
    from judgealign.errors import ConfigError
    from judgealign.rubric.loader import load_rubric

    target = Path(rubric_name)
    if not target.is_absolute() and (path.parent / target).is_file():
        target = path.parent / target
    try:
        known = set(load_rubric(target if target.is_file() else rubric_name).dimension_ids)
    except ConfigError as exc:
        raise DataError(f"{path}: rubric {rubric_name!r}: {exc}") from None
    for n, case in enumerate(cases, 1):
        for d in case.dimensions or ():
            if d not in known:
                raise DataError(
                    f"{path}: case {n} ({case.id}): dimension {d!r} is not in rubric "
                    f"{rubric_name!r}; use one of {', '.join(sorted(known))}"
                )


def load_suite(path_or_name: str | Path) -> AgentSuite:
    """Load a suite from YAML (``.yaml``/``.yml``) or JSONL (``.jsonl``), or ``"example"``
    for the shipped example suite. Every case is validated and its data files must exist.

    >>> load_suite("example").case("churn-missing").dataset.files
    ('data/customers.csv', 'data/customers_active.csv')
    """
    if str(path_or_name) == EXAMPLE_SUITE and not Path(path_or_name).exists():
        path = example_suite_path()
    else:
        path = Path(path_or_name)
    if path.is_dir():
        found = [p for p in (path / "suite.yaml", path / "suite.yml", path / "suite.jsonl")]
        found = [p for p in found if p.is_file()]
        if not found:
            raise DataError(f"{path}: no suite.yaml or suite.jsonl in this folder")
        path = found[0]
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        if not path.is_file():
            raise DataError(f"{path}: suite file not found; check the path")
        return _from_jsonl(path)
    if suffix in (".yaml", ".yml"):
        return _from_yaml(path, read_text(path))
    raise DataError(f"{path}: a suite is a .yaml or .jsonl file (or 'example')")
