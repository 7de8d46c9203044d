"""One code cell as Python: its AST over the exact source, and edits spliced into that source.

Mutations must change only what they mean to change: a cell rewritten by ``ast.unparse``
loses its comments, blank lines and layout, and a judge would see that as a change too. So
each edit replaces the exact character span of an AST node (or whole lines of a statement)
and leaves every other character of the cell as it was.

IPython syntax (``!pip install``, ``%matplotlib inline``, ``%%time``) is not Python: such lines
are masked with ``pass`` (same line count, same indentation) before parsing, so positions in
the tree still point into the real source. A cell magic other than a few that run Python
(``%%bash``, ``%%writefile``) leaves the cell opaque (no tree): probes do not touch it.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from judgealign.errors import DataError

# Cell magics whose body is Python; any other cell magic makes the cell opaque.
PYTHON_CELL_MAGICS = frozenset({"%%time", "%%timeit", "%%capture", "%%prun", "%%debug"})
_LINE_MAGIC = re.compile(r"^([ \t]*)(?:[!%]|[\w.\[\], ]+=[ \t]*[!%])")
_HELP = re.compile(r"^([ \t]*)[\w.]+\?\??[ \t]*$")


def _line_states(lines: Sequence[str]) -> list[bool]:
    """For each line, whether it starts a new logical line (not inside brackets, a
    multi-line string, or after a backslash): only such a line can be an IPython magic
    (``% (a, b)`` continuing a wrapped expression is the modulo operator)."""
    starts: list[bool] = []
    depth = 0
    quote = ""  # the open string's delimiter, when a string spans lines
    backslash = False
    for line in lines:
        starts.append(depth == 0 and not quote and not backslash)
        i = 0
        while i < len(line):
            ch = line[i]
            if quote:
                if ch == "\\":
                    i += 2
                    continue
                if line.startswith(quote, i):
                    i += len(quote)
                    quote = ""
                    continue
                i += 1
                continue
            if ch == "#":
                break
            if ch in "\"'":
                triple = line[i : i + 3]
                quote = triple if triple in ('"""', "'''") else ch
                i += len(quote)
                continue
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth = max(0, depth - 1)
            i += 1
        if quote in ('"', "'"):
            quote = ""  # an unterminated one-line string: a syntax error, not a continuation
        backslash = line.rstrip("\n").endswith("\\") and not quote
    return starts


def mask_magics(text: str) -> tuple[str, frozenset[int]]:
    """``text`` with IPython-only lines replaced by ``pass`` (1-based numbers of those lines).

    >>> mask_magics("!pip install x\\nimport x\\n%matplotlib inline")
    ('pass\\nimport x\\npass', frozenset({1, 3}))
    >>> mask_magics("s = ('%d'\\n     % 3)")[1]
    frozenset()
    """
    lines = text.split("\n")
    starts = _line_states(lines)
    masked: set[int] = set()
    continued = False
    indent = ""
    for i, line in enumerate(lines):
        if continued or (i == 0 and line.startswith("%%")):
            # A continued magic line keeps the indentation of the line it continues.
            lines[i] = indent + "pass"
            masked.add(i + 1)
            continued = line.rstrip().endswith("\\") and not line.startswith("%%")
            continue
        found = (_LINE_MAGIC.match(line) or _HELP.match(line)) if starts[i] else None
        if found:
            indent = found.group(1)
            lines[i] = indent + "pass"
            masked.add(i + 1)
            continued = line.rstrip().endswith("\\")
    return "\n".join(lines), frozenset(masked)


@dataclass(frozen=True)
class Edit:
    """Replace ``text[start:end]`` with ``new``."""

    start: int
    end: int
    new: str


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """``text`` with every edit spliced in; overlapping edits are a bug, not a guess.

    >>> apply_edits("a = b + c", [Edit(4, 5, "x"), Edit(8, 9, "y")])
    'a = x + y'
    """
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    out: list[str] = []
    pos = 0
    for e in ordered:
        if e.start < pos or e.end < e.start:
            raise ValueError(f"overlapping edits at {e.start}:{e.end}")
        out.append(text[pos : e.start])
        out.append(e.new)
        pos = e.end
    out.append(text[pos:])
    return "".join(out)


def first_line(stmt: ast.stmt) -> int:
    """A statement's first line, its decorators included (``lineno`` is the ``def`` line)."""
    decorators: list[ast.expr] = getattr(stmt, "decorator_list", None) or []
    return min([stmt.lineno, *(d.lineno for d in decorators)])


@dataclass
class CellCode:
    """A code cell's source, its masked twin and its AST (``tree`` is None when opaque)."""

    text: str
    masked: str = ""
    magic_lines: frozenset[int] = frozenset()
    tree: ast.Module | None = None
    error: str = ""
    _starts: list[int] = field(default_factory=list, repr=False)

    @classmethod
    def parse(cls, text: str) -> CellCode:
        first = text.lstrip().split("\n", 1)[0].split(" ", 1)[0] if text.strip() else ""
        masked, magic = mask_magics(text)
        code = cls(text=text, masked=masked, magic_lines=magic)
        if first.startswith("%%") and first not in PYTHON_CELL_MAGICS:
            code.error = f"cell magic {first}"
            return code
        try:
            with warnings.catch_warnings():
                # Old notebooks' "\s" escapes and the like: the code's problem, not ours.
                warnings.simplefilter("ignore")
                code.tree = ast.parse(masked)
        except (SyntaxError, ValueError) as exc:
            code.error = f"not Python: {exc}"
        return code

    @property
    def ok(self) -> bool:
        return self.tree is not None

    @cached_property
    def lines(self) -> list[str]:
        """The source's lines, each with its newline (the last may have none)."""
        return self.text.splitlines(keepends=True) or [""]

    def line_start(self, lineno: int) -> int:
        """Offset of the first character of 1-based line ``lineno`` (len(text) past the end)."""
        if not self._starts:
            pos = 0
            for line in self.lines:
                self._starts.append(pos)
                pos += len(line)
            self._starts.append(pos)
        return self._starts[min(lineno - 1, len(self._starts) - 1)]

    def offset(self, lineno: int, col: int) -> int:
        """Character offset of an AST position (``col`` counts UTF-8 bytes, as ast does)."""
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ""
        return self.line_start(lineno) + len(line.encode("utf-8")[:col].decode("utf-8", "replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def segment(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.text[start:end]

    def replace(self, node: ast.AST, new: str) -> Edit:
        """An edit replacing exactly ``node``'s source."""
        start, end = self.span(node)
        return Edit(start, end, new)

    def indent_of(self, stmt: ast.stmt) -> str:
        line = self.lines[stmt.lineno - 1]
        return line[: len(line) - len(line.lstrip(" \t"))]

    def owns_lines(self, stmt: ast.stmt) -> bool:
        """Whether ``stmt`` alone fills its lines (no ``a = 1; b = 2`` neighbour). Read on the
        masked source, where AST columns are true even on a masked IPython line."""
        masked = self.masked.split("\n")
        top = first_line(stmt)
        col = stmt.col_offset if top == stmt.lineno else 0
        first = masked[top - 1].encode("utf-8")
        last = masked[(stmt.end_lineno or stmt.lineno) - 1].encode("utf-8")
        head = first[:col].decode("utf-8", "replace")
        if top != stmt.lineno:
            head = head[: len(head) - len(head.lstrip())]
        tail = last[stmt.end_col_offset or 0 :].decode("utf-8", "replace")
        return not head.strip() and (not tail.strip() or tail.strip().startswith("#"))

    def comment_lines_above(self, stmt: ast.stmt) -> int:
        """How many comment lines directly above ``stmt`` (no blank line between) describe it."""
        n = 0
        lineno = first_line(stmt) - 1
        while lineno >= 1 and lineno not in self.magic_lines:
            if not self.lines[lineno - 1].strip().startswith("#"):
                break
            n += 1
            lineno -= 1
        return n

    def top_line(self, stmt: ast.stmt) -> int:
        """The first line of ``stmt`` with its decorators and introducing comments."""
        return first_line(stmt) - self.comment_lines_above(stmt)

    def delete_stmt(self, stmt: ast.stmt, *, with_comments: bool = True) -> Edit:
        """Delete ``stmt``'s whole lines (and the comment lines that introduce it).

        A statement sharing its line with another cannot be cut out cleanly: DataError.
        """
        if not self.owns_lines(stmt):
            raise DataError("statement shares its line with another")
        first = first_line(stmt) - (self.comment_lines_above(stmt) if with_comments else 0)
        start = self.line_start(first)
        last = stmt.end_lineno or stmt.lineno
        # Blank lines on both sides would pile up into a gap: one goes with the statement.
        blank_before = first == 1 or not self.lines[first - 2].strip()
        if blank_before and last < len(self.lines) and not self.lines[last].strip():
            last += 1
        return Edit(start, self.line_start(last + 1), "")

    def insert_before(self, stmt: ast.stmt, code: str) -> Edit:
        """Insert ``code`` (one or more lines, unindented) before ``stmt`` at its indentation,
        above the comment lines that introduce it."""
        indent = self.indent_of(stmt)
        first = first_line(stmt) - self.comment_lines_above(stmt)
        at = self.line_start(first)
        body = "".join(f"{indent}{ln}\n" if ln.strip() else "\n" for ln in code.split("\n"))
        return Edit(at, at, body)

    def insert_after(self, stmt: ast.stmt, code: str) -> Edit:
        indent = self.indent_of(stmt)
        at = self.line_start(stmt.end_lineno + 1)  # type: ignore[operator]
        prefix = "" if self.text[:at].endswith("\n") or at == 0 else "\n"
        body = "".join(f"{indent}{ln}\n" if ln.strip() else "\n" for ln in code.split("\n"))
        return Edit(at, at, prefix + body.rstrip("\n") + ("\n" if at < len(self.text) else ""))

    def string_lines(self) -> frozenset[int]:
        """Lines (1-based) that continue a multi-line string: re-indenting them would change
        the string's value."""
        inside: set[int] = set()
        # Python 3.12+ tokenizes f-strings in parts, from FSTRING_START to FSTRING_END.
        fs_start = getattr(tokenize, "FSTRING_START", None)
        fs_end = getattr(tokenize, "FSTRING_END", None)
        opened: list[int] = []
        try:
            for tok in tokenize.generate_tokens(io.StringIO(self.masked).readline):
                if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
                    inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
                elif fs_start is not None and tok.type == fs_start:
                    opened.append(tok.start[0])
                elif fs_end is not None and tok.type == fs_end and opened:
                    inside.update(range(opened.pop() + 1, tok.end[0] + 1))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            pass
        return frozenset(inside)


def dedent_lines(text: str, amount: int, keep: frozenset[int] = frozenset(), first: int = 1) -> str:
    """Remove ``amount`` leading spaces/tabs from each line of ``text`` (numbered from
    ``first``), except the lines in ``keep`` (continuations of multi-line strings).

    >>> dedent_lines("    a\\n    b\\n", 4)
    'a\\nb\\n'
    """
    out = []
    for n, line in enumerate(text.splitlines(keepends=True), first):
        if n in keep:
            out.append(line)
            continue
        lead = len(line) - len(line.lstrip(" \t"))
        out.append(line[min(lead, amount) :])
    return "".join(out)


# -- names ------------------------------------------------------------------------------------

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _walk_scope(node: ast.AST) -> Iterator[ast.AST]:
    """Nodes of ``node`` that run in its own scope (not inside nested defs/lambdas/classes
    or comprehensions, whose names are their own)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for child in ast.iter_child_nodes(current):
            if isinstance(child, _SCOPES + _COMPREHENSIONS):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    yield child  # the name it binds belongs to the outer scope
                continue
            stack.append(child)


def bound_names(stmt: ast.stmt) -> set[str]:
    """Names ``stmt`` (re)binds in the notebook's global scope.

    >>> sorted(bound_names(ast.parse("a, (b, c) = f(x)").body[0]))
    ['a', 'b', 'c']
    """
    out: set[str] = set()
    for node in _walk_scope(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            out.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(node.name)
        elif isinstance(node, ast.alias):
            if node.name != "*":
                out.add((node.asname or node.name).split(".")[0])
        elif (isinstance(node, ast.ExceptHandler) and node.name) or (
            isinstance(node, ast.MatchAs | ast.MatchStar) and node.name
        ):
            out.add(node.name)
    return out


def rebinds(stmt: ast.stmt, name: str) -> bool:
    """Whether ``stmt`` gives ``name`` a whole new value (not ``name += 1`` or
    ``name[k] = v``, which keep using the old one)."""
    if isinstance(stmt, ast.AugAssign):
        return False
    return name in bound_names(stmt)


def _params(args: ast.arguments) -> set[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    return {a.arg for a in every}


def _outer_parts(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[ast.AST]:
    """What a function evaluates where it is defined: defaults, decorators, annotations."""
    args = node.args
    parts: list[ast.AST] = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
    if not isinstance(node, ast.Lambda):
        parts += node.decorator_list
        parts += [a.annotation for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]
                  if a.annotation is not None]  # fmt: skip
        if node.returns is not None:
            parts.append(node.returns)
    return parts


def used_names(node: ast.AST) -> set[str]:
    """Names ``node`` reads from the enclosing (notebook) scope: a function's parameters and
    locals, a comprehension's targets are its own, not reads of globals. A function defined
    in one cell and called in another reads the globals its body mentions, so those count.

    >>> sorted(used_names(ast.parse("def f(df): return df.x + g\\nz = [v for v in w]")))
    ['g', 'w']
    """
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        outer = set().union(*(used_names(p) for p in _outer_parts(node)))
        body = node.body if isinstance(node.body, list) else [node.body]
        inner = set().union(*(used_names(b) for b in body))
        local = _params(node.args)
        declared: set[str] = set()
        for b in body:
            if isinstance(b, ast.stmt):
                local |= bound_names(b)
            for g in ast.walk(b):
                if isinstance(g, ast.Global | ast.Nonlocal):
                    declared |= set(g.names)
        return outer | (inner - (local - declared))
    if isinstance(node, ast.ClassDef):
        outer = set().union(
            *(used_names(p) for p in [*node.bases, *node.keywords, *node.decorator_list])
        )
        inner = set().union(*(used_names(b) for b in node.body))
        local = set().union(*(bound_names(b) for b in node.body))
        return outer | (inner - local)
    if isinstance(node, _COMPREHENSIONS):
        gens = node.generators
        targets = {n.id for g in gens for n in ast.walk(g.target) if isinstance(n, ast.Name)}
        first = used_names(gens[0].iter)
        rest: set[str] = set()
        for g in gens:
            if g is not gens[0]:
                rest |= used_names(g.iter)
            for cond in g.ifs:
                rest |= used_names(cond)
        elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for e in elts:
            rest |= used_names(e)
        return first | (rest - targets)
    out: set[str] = set()
    for child in ast.iter_child_nodes(node):
        out |= used_names(child)
    return out


def touched_names(stmt: ast.stmt) -> set[str]:
    """Names ``stmt`` reads, binds or may change in place (``df.drop(..., inplace=True)``,
    ``df['x'] = ...``, ``plt.plot``): two statements touching none in common commute."""
    out = used_names(stmt) | bound_names(stmt)
    for node in ast.walk(stmt):
        if isinstance(node, ast.AugAssign):
            out |= used_names(node.target)
    return out


def call_name(node: ast.AST) -> str:
    """The dotted name of a call's function (``sklearn.metrics.f1_score``, ``model.fit``);
    ``""`` when it is not a plain dotted name.

    >>> call_name(ast.parse("a.b.c(1)").body[0].value)
    'a.b.c'
    """
    func = node.func if isinstance(node, ast.Call) else node
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
        return ".".join(reversed(parts))
    return ""


def base_name(node: ast.AST) -> str | None:
    """The variable at the root of ``X_train``, ``X_train[cols]``, ``X_train.values``."""
    while isinstance(node, ast.Subscript | ast.Attribute | ast.Starred):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def iter_calls(node: ast.AST) -> Iterator[ast.Call]:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            yield n


def method_of(call: ast.Call) -> str:
    """The last attribute of the called function: ``fit`` in ``imputer.fit(X)``."""
    return call.func.attr if isinstance(call.func, ast.Attribute) else ""


def receiver(call: ast.Call) -> str | None:
    """The variable a method is called on: ``imputer`` in ``imputer.fit(X)``."""
    return base_name(call.func.value) if isinstance(call.func, ast.Attribute) else None


def child_bodies(stmt: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists nested directly in ``stmt``."""
    out: list[list[ast.stmt]] = []
    for name in ("body", "orelse", "finalbody"):
        value = getattr(stmt, name, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            out.append(value)
    for handler in getattr(stmt, "handlers", []) or []:
        out.append(handler.body)
    for case in getattr(stmt, "cases", []) or []:
        out.append(case.body)
    return out


def all_statements(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones after their parent (source order)."""
    for stmt in body:
        yield stmt
        for inner in child_bodies(stmt):
            yield from all_statements(inner)
