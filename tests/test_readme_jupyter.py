"""The README's "In Python" section runs, unchanged, in a real Jupyter kernel.

A Jupyter cell runs inside an event loop (``asyncio.run`` raises there), so this is where a
synchronous API built on ``asyncio.run`` breaks. The section is extracted from README.md, put
in one notebook cell and executed by nbclient in an ipykernel kernel started with this venv's
interpreter, from the repository root. It must use the package root only.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import judgealign as ja

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
SECTION_HEADING = "## In Python"
KERNEL_NAME = "judgealign-test-venv"
CELL_TIMEOUT_S = 120

_FENCE_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
_PYTHON_INFO = {"python", "py", "python3"}


def extract_python_section(text: str, heading: str = SECTION_HEADING) -> str:
    """The fenced Python code blocks under ``heading``, up to the next level-2 heading.

    Blocks are joined with a blank line; "" when there is no such heading or no Python block
    under it. Lines inside fences (a ``## `` comment in a shell block) are never headings;
    ``### `` subsections belong to the section.
    """
    blocks: list[str] = []
    in_section = False
    fence: str | None = None  # the opening fence while inside a fenced block
    collecting = False
    current: list[str] = []
    for line in text.splitlines():
        if fence is not None:
            stripped = line.strip()
            if set(stripped) == {fence[0]} and len(stripped) >= len(fence):  # closing fence
                if collecting:
                    blocks.append("\n".join(current))
                fence, collecting, current = None, False, []
                continue
            if collecting:
                current.append(line)
            continue
        opened = _FENCE_OPEN.match(line)
        if opened:
            fence = opened["fence"]
            collecting = in_section and opened["info"].lower() in _PYTHON_INFO
            continue
        if line.startswith("## ") or line.rstrip() == "##":
            in_section = line.rstrip() == heading
    return "\n\n".join(block.strip("\n") for block in blocks)


def root_only_violations(code: str, public: set[str]) -> list[str]:
    """Each use of judgealign other than ``import judgealign as ja`` / ``from judgealign import``
    of public names, or ``ja.<public name>``: dotted submodules are internals."""
    problems: list[str] = []
    aliases: set[str] = set()
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name != "judgealign" and not alias.name.startswith("judgealign."):
                    continue
                if alias.name == "judgealign" and alias.asname == "ja":
                    aliases.add("ja")
                else:
                    as_part = f" as {alias.asname}" if alias.asname else ""
                    problems.append(
                        f"line {node.lineno}: `import {alias.name}{as_part}`"
                        " (use `import judgealign as ja`)"
                    )
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("judgealign."):
                problems.append(
                    f"line {node.lineno}: `from {node.module} import ...` is a submodule"
                    " (use `from judgealign import ...`)"
                )
            elif node.module == "judgealign":
                problems.extend(
                    f"line {node.lineno}: `from judgealign import {alias.name}` is not public"
                    for alias in node.names
                    if alias.name not in public
                )
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr not in public
        ):
            problems.append(f"line {node.lineno}: `{node.value.id}.{node.attr}` is not public")
    return problems


def _public_names() -> set[str]:
    return set(ja.__all__) | {"__version__"}


def run_in_kernel(code: str, cwd: Path, scratch: Path) -> Any:
    """Execute ``code`` as one cell in a fresh ipykernel kernel of this interpreter.

    The kernelspec is written to ``scratch`` with ``sys.executable`` as its interpreter and
    the kernel manager looks only there, so no installed or per-user kernelspec (which may
    point at another Python) is picked. Raises nbclient's CellExecutionError on a cell error.
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel", reason="the dev extra installs ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    kernels = scratch / "kernels"
    spec_dir = kernels / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "judgealign tests (this venv)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    km = AsyncKernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]),
    )
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(code))
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": spec["display_name"]}
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(cwd)}},
    )
    # No user IPython profile or startup file can change what the cell sees.
    env = {**os.environ, "IPYTHONDIR": str(scratch / "ipython")}
    return client.execute(cwd=str(cwd), env=env)


def _stream_text(nb: Any) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )


def _cell_errors(nb: Any) -> list[str]:
    return [
        f"{out.get('ename')}: {out.get('evalue')}"
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


# --- the extraction, on README-like files --------------------------------------------------------

_SAMPLE_README = """\
# judgealign

```bash
make demo
```

## Quick start

```python
print("not this one: another section")
```

## In Python

Some prose.

```python
import asyncio
import judgealign as ja
```

```bash
## a shell comment, not a heading
echo hi
```

### A subsection still belongs to it

````py
print(ja.__version__)
```
not a closing fence of a 4-backtick block
````

## Data formats

```python
print("nor this one")
```
"""


def _write_readme(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_extract_python_section_takes_only_that_section(tmp_path: Path) -> None:
    readme = _write_readme(tmp_path, _SAMPLE_README)
    code = extract_python_section(readme.read_text(encoding="utf-8"))
    assert code == (
        "import asyncio\nimport judgealign as ja\n\n"
        "print(ja.__version__)\n```\nnot a closing fence of a 4-backtick block"
    )


def test_extract_python_section_empty_without_heading_or_block(tmp_path: Path) -> None:
    assert extract_python_section("# x\n\n## Other\n\n```python\nprint(1)\n```\n") == ""
    no_block = _write_readme(tmp_path, "# x\n\n## In Python\n\nprose only\n\n## Next\n")
    assert extract_python_section(no_block.read_text(encoding="utf-8")) == ""


def test_extract_python_section_heading_must_match_exactly() -> None:
    text = "## In Python, later\n\n```python\nprint(1)\n```\n"
    assert extract_python_section(text) == ""
    assert extract_python_section("## In Python  \n```python\nprint(2)\n```\n") == "print(2)"


def test_root_only_accepts_the_package_root() -> None:
    code = (
        "import asyncio\nimport judgealign as ja\nfrom judgealign import Judge, load_rubric\n"
        "judge = ja.Judge(ja.load_rubric('ml-notebook'), model='fake:lenient')\n"
        "print(ja.__version__)\nawait asyncio.sleep(0)\n"
    )
    assert root_only_violations(code, _public_names()) == []


def test_root_only_rejects_submodules_and_private_names() -> None:
    code = (
        "import judgealign\nimport judgealign.judge as jj\n"
        "from judgealign.judge.judge import Judge\nfrom judgealign import judge, Judge\n"
        "import judgealign as ja\nja.evaluation.runner\n"
    )
    problems = root_only_violations(code, _public_names())
    assert len(problems) == 5, problems
    assert any("`import judgealign`" in p for p in problems)
    assert any("judgealign.judge as jj" in p for p in problems)
    assert any("from judgealign.judge.judge" in p for p in problems)
    assert any("import judge` is not public" in p for p in problems)
    assert any("ja.evaluation" in p for p in problems)


# --- a real kernel -----------------------------------------------------------------------------


def test_kernel_runs_a_readme_section_inside_an_event_loop(tmp_path: Path) -> None:
    readme = _write_readme(
        tmp_path,
        "# t\n\n## In Python\n\n```python\n"
        "import asyncio\nimport judgealign as ja\nprint(ja.__version__)\n"
        "await asyncio.sleep(0)  # top-level await: the cell runs inside a loop\n"
        "print('loop running:', asyncio.get_running_loop().is_running())\n"
        "```\n\n## Next\n",
    )
    code = extract_python_section(readme.read_text(encoding="utf-8"))
    assert root_only_violations(code, _public_names()) == []
    nb = run_in_kernel(code, REPO_ROOT, tmp_path)
    assert _cell_errors(nb) == []
    assert _stream_text(nb).split() == [ja.__version__, "loop", "running:", "True"]


def test_kernel_runs_run_sync_inside_its_loop(tmp_path: Path) -> None:
    code = (
        "import asyncio, sys\n"
        "from judgealign.sync import run_sync\n"
        "async def work():\n"
        "    sem = asyncio.Semaphore(2)\n"
        "    async def one(i):\n"
        "        async with sem:\n"
        "            await asyncio.sleep(0)\n"
        "            return i\n"
        "    return sum(await asyncio.gather(*(one(i) for i in range(5))))\n"
        "coro = work()\n"
        "try:  # a cell runs inside the kernel's event loop (unpatched: no nest_asyncio)\n"
        "    asyncio.run(coro)\n"
        "except RuntimeError:\n"
        "    coro.close()\n"
        "    print('asyncio.run-refused')\n"
        "print(run_sync(work()), sys.executable)\n"
    )
    nb = run_in_kernel(code, REPO_ROOT, tmp_path)
    assert _cell_errors(nb) == []
    assert _stream_text(nb).split() == ["asyncio.run-refused", "10", sys.executable]


def test_readme_python_section_runs_in_jupyter(tmp_path: Path) -> None:
    if not README.exists():
        pytest.skip("no README.md at the repository root")
    code = extract_python_section(README.read_text(encoding="utf-8"))
    if not code.strip():
        pytest.skip(f"README.md has no ```python block under {SECTION_HEADING!r}")
    problems = root_only_violations(code, _public_names())
    assert not problems, "README's Python section must use the package root only:\n" + "\n".join(
        problems
    )
    nb = run_in_kernel(code, REPO_ROOT, tmp_path)
    assert _cell_errors(nb) == []
