"""The layout rules of ``../shared/STYLE.md`` that a program can check, checked on the source.

- No import cycle among the modules of ``src/alliance``, counting imports inside functions (a
  package's ``__init__`` importing its submodules is not a cycle; a submodule importing a name
  from its own package's ``__init__`` is one).
- The core never imports Django (only ``alliance.web`` does) nor reads the environment.
- Measure names (``INSTRUMENT.SCALE@TIMEPOINT``) are split only by :mod:`alliance.protocol`.
- Timepoints are sorted once, by the protocol loader.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "alliance"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The modules of ``alliance`` that module ``name`` imports, anywhere in its body."""
    path, is_package = MODULES[name]
    base = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[:len(base) - node.level + 1]
                module = ".".join(parent + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # Importing a submodule needs its parent package, which is being (or was) imported
            # already when it is an ancestor of this module; any other name needs the package's
            # __init__ itself.
            ancestor = name == module or name.startswith(module + ".")
            for alias in node.names:
                if f"{module}.{alias.name}" in MODULES:
                    found.add(f"{module}.{alias.name}")
                    if not ancestor:
                        found.add(module)
                else:
                    found.add(module)
    return {m for m in found if m in MODULES and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_among_the_modules():
    graph = {name: _imports(name) for name in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_core_does_not_import_django():
    offenders = {}
    for name, (path, _) in MODULES.items():
        if name.startswith("alliance.web") or name == "alliance.cli":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"^\s*(from|import) django\b", text, re.M):
            offenders[name] = path
    assert offenders == {}


def test_the_core_does_not_read_the_environment():
    # Settings reach the core as arguments; the environment is read at the edges (web settings).
    offenders = [name for name, (path, _) in MODULES.items()
                 if not name.startswith("alliance.web")
                 and re.search(r"os\.environ|os\.getenv|getenv\(", path.read_text(encoding="utf-8"))]
    assert offenders == []


# Splitting a measure name by hand: on "@", or on "." right before an "@" split.
_HAND_PARSING = re.compile(
    r"""\.(r?split|r?partition)\(\s*["']@["']"""  # x.split("@"), x.partition("@")
    r"""|\.rsplit\(\s*["']\.["']\s*,\s*1\s*\)"""  # x.rsplit(".", 1)
    r"""|\.split\(\s*["']\.["']\s*,\s*1\s*\)"""  # x.split(".", 1)
    r"""|\.partition\(\s*["']\.["']\s*\)"""  # x.partition(".")
    r"""|f["'][^"'\n]*\}\.\{[^"'\n]*\}@\{"""  # f"{instrument}.{scale}@{timepoint}"
    r"""|f["'][^"'\n]*\}@\{"""  # f"{measure}@{timepoint}"
)
# Lines that build an ``@`` name that is not a measure, with the reason.
_NOT_MEASURES = {
    "alliance/monitoring/alerts.py": "INSTRUMENT@TIMEPOINT names the instruments of a late assessment",
}


def test_measure_names_are_split_only_by_the_protocol_package():
    offenders = []
    for name, (path, _) in MODULES.items():
        if name.startswith("alliance.protocol"):
            continue
        exempt = str(path.relative_to(SOURCE)) in _NOT_MEASURES
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if _HAND_PARSING.search(line) and not (exempt and 'f"{i}@{' in line):
                offenders.append(f"{path.relative_to(SOURCE)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize("line", [
    'base, _, when = name.partition("@")',
    'instrument = name.split(".", 1)[0]',
    'return f"{instrument}.{scale}@{timepoint}"',
    'columns = {t: f"{measure}@{t}" for t in timepoints}',
])
def test_the_hand_parsing_pattern_finds_what_it_should(line):
    assert _HAND_PARSING.search(line)


def test_timepoints_are_sorted_only_by_the_protocol_loader():
    pattern = re.compile(r"sorted\([^)]*timepoints[^)]*order")
    offenders = [f"{path.relative_to(SOURCE)}:{number}"
                 for name, (path, _) in MODULES.items() if not name.startswith("alliance.protocol")
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if pattern.search(line)]
    assert offenders == []
