"""Optional execution of generated notebooks, so judges see real outputs.

Each notebook runs in its own subprocess (``python -m judgealign.agent.execution``) with
nbclient and a Jupyter kernel, in a folder holding the case's data as ``data/``. Cells run in
order with errors allowed (a failing cell's traceback becomes an output the judge sees, and
the rest still runs); the executed notebook is written after every cell, so a notebook that
runs out of time keeps the outputs it produced. The parent kills the whole process group at
the timeout. Needs ``pip install 'judgealign[agent]'`` (nbclient, ipykernel) and, in the
kernel, whatever the notebook imports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from judgealign.errors import ConfigError

ExecutionStatus = Literal["ok", "error", "timeout", "crash"]
# Kernel start-up and shutdown on top of the notebook's own time.
STARTUP_SECONDS = 60.0


class ExecutionResult(BaseModel):
    """How one notebook's execution went: ``ok`` (every cell ran without error), ``error``
    (a cell raised: ``cell`` and ``reason`` name the first), ``timeout`` or ``crash`` (the
    kernel or the worker died). ``executed`` is the path of the executed copy (absent when
    nothing ran); a run stores it relative to its folder."""

    model_config = ConfigDict(frozen=True)

    status: ExecutionStatus
    reason: str = ""
    cell: int | None = None
    errors: int = 0
    seconds: float = 0.0
    executed: str | None = None


def check_available() -> None:
    """ConfigError naming the extra when nbclient or ipykernel is missing."""
    try:
        import ipykernel  # noqa: F401
        import nbclient  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--execute needs nbclient and ipykernel: pip install 'judgealign[agent]'"
        ) from None


async def execute_notebook(
    notebook: Path,
    out: Path,
    cwd: Path,
    *,
    timeout: float,
    kernel: str = "python3",
) -> ExecutionResult:
    """Run ``notebook`` in ``cwd`` within ``timeout`` seconds; write the executed copy to
    ``out``. Never raises for what the notebook does: the result says what happened."""
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "judgealign.agent.execution", str(notebook), str(out)]
    argv += ["--cwd", str(cwd), "--timeout", str(timeout), "--kernel", kernel]
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # the kernel is its child: one killpg stops both
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout + STARTUP_SECONDS)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5)
        if isinstance(exc, asyncio.CancelledError):
            raise
        stdout, stderr = b"", b""
        return ExecutionResult(
            status="timeout",
            reason=f"did not finish within {timeout:g} s",
            seconds=time.perf_counter() - started,
            executed=str(out) if out.is_file() else None,
        )
    seconds = time.perf_counter() - started
    lines = stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        report = {}
    if not isinstance(report, dict) or "status" not in report:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()
        why = tail[-1][:300] if tail else f"exit code {proc.returncode}"
        return ExecutionResult(
            status="crash",
            reason=why,
            seconds=seconds,
            executed=str(out) if out.is_file() else None,
        )
    return ExecutionResult(
        status=report["status"],
        reason=str(report.get("reason", ""))[:500],
        cell=report.get("cell"),
        errors=int(report.get("errors", 0)),
        seconds=seconds,
        executed=str(out) if out.is_file() else None,
    )


def _error_of(cell: Any) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
    return None


def _write(nb: Any, path: Path) -> None:
    import nbformat

    tmp = path.with_name(f".{path.name}.tmp")
    writes: Any = nbformat.writes
    tmp.write_text(str(writes(nb, version=4)) + "\n", encoding="utf-8")
    tmp.replace(path)


def _run(notebook: Path, out: Path, cwd: Path, timeout: float, kernel: str) -> dict[str, Any]:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    read: Any = nbformat.read
    nb = read(str(notebook), as_version=4)
    client = NotebookClient(
        nb,
        timeout=int(max(1, timeout)),
        kernel_name=kernel,
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    first: tuple[int, str] | None = None
    errors = 0
    number = 0
    try:
        with client.setup_kernel(cwd=str(cwd)):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                number = index + 1
                client.execute_cell(cell, index)
                _write(nb, out)
                why = _error_of(cell)
                if why is not None:
                    errors += 1
                    first = first or (number, why)
    except CellTimeoutError:
        _write(nb, out)
        return {"status": "timeout", "cell": number, "reason": f"cell {number} timed out"}
    except DeadKernelError as exc:
        return {"status": "crash", "cell": number, "reason": f"kernel died: {exc}"[:300]}
    _write(nb, out)
    if first is not None:
        return {"status": "error", "cell": first[0], "reason": first[1], "errors": errors}
    return {"status": "ok"}


def main(argv: Sequence[str] | None = None) -> None:
    """The worker: execute one notebook, print one JSON line saying how it went."""
    ap = argparse.ArgumentParser(prog="python -m judgealign.agent.execution")
    ap.add_argument("notebook", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--cwd", type=Path, required=True)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--kernel", default="python3")
    args = ap.parse_args(argv)
    try:
        report = _run(args.notebook, args.out, args.cwd, args.timeout, args.kernel)
    except Exception as exc:  # the worker's one job is to say what happened, as data
        report = {"status": "crash", "reason": f"{type(exc).__name__}: {exc}"[:300]}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
