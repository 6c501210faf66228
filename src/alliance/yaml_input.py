"""The one bounded YAML reader: every YAML document enters ``alliance`` through :func:`read_yaml`.

A protocol comes from a file (:func:`alliance.protocol.load_protocol`), a web upload or the copy a
stored study keeps; a site's instrument files and import mappings are YAML too. All are read here,
so all refuse the same documents. (It sits outside :mod:`alliance.protocol` because the instrument
bank, which the protocol package reads, uses it as well; :mod:`alliance.protocol.yaml_input`
gives the same functions raising :class:`~alliance.protocol.ProtocolError`.) PyYAML's safe
loader builds no Python objects from a file, but on its own it still accepts

- a document of any size;
- an *alias bomb*: a few kilobytes of anchors (``&a``) and aliases (``*a``) that stand for
  billions of nodes (PyYAML shares the aliased objects, but whatever walks, prints or copies the
  result visits every one of them);
- a recursive alias (a node that contains itself), which makes any walk endless;
- nesting deep enough that the Python composer raises ``RecursionError``.

So the document is first read as a stream of parser events (a flat loop: its time is linear in
the size of the document, and nothing is built), counting alias uses, nesting depth and the
number of nodes the document stands for once aliases are expanded; only a document within every
limit of :data:`LIMITS` is then loaded. Both steps use libyaml (``yaml.CSafeLoader``, several
times faster) when PyYAML was built with it and the pure-Python ``yaml.SafeLoader`` otherwise;
both parse the same YAML 1.1 the same way. Every refusal is a :class:`YamlInputError` naming the
document, the line where one was found, and the limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from alliance.problems import DataProblem, StudyDataError, utf8_problem

__all__ = ["LIMITS", "MAX_ALIASES", "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "YamlInputError", "read_yaml",
           "read_yaml_file"]


class YamlInputError(StudyDataError):
    """A YAML document that cannot be read or is beyond :data:`LIMITS` (``problems`` say where and why)."""

    def __init__(self, problems):
        count = len(problems)
        super().__init__(problems, f"{count} {'problem' if count == 1 else 'problems'} in the YAML document",
                         sort=False)

MAX_BYTES = 1_048_576
"""Largest document, in bytes of UTF-8 (1 MiB; the Levin protocol is about 13 KB)."""
MAX_ALIASES = 100
"""Most alias uses (``*name``) in one document."""
MAX_DEPTH = 50
"""Deepest nesting of mappings and lists, counting what aliases stand for."""
MAX_NODES = 100_000
"""Most nodes (scalars, mappings, lists) the document stands for once every alias is expanded."""
LIMITS = {"bytes": MAX_BYTES, "aliases": MAX_ALIASES, "depth": MAX_DEPTH, "nodes": MAX_NODES}

SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it, else the pure-Python one (same documents, same result)."""


def read_yaml(document: bytes | str, origin: str) -> Any:
    """Parse one YAML document within :data:`LIMITS`, building only plain data (no Python objects).

    Parameters
    ----------
    document : bytes or str
        Bytes are decoded as UTF-8, with or without a byte-order mark.
    origin : str
        The file name (or ``"stored protocol of study X"``), named in every problem.

    Returns
    -------
    object
        What :func:`yaml.safe_load` gives: dicts, lists, strings, numbers, booleans, dates, ``None``.

    Raises
    ------
    YamlInputError
        For a document over :data:`MAX_BYTES`, not UTF-8, not valid YAML, or beyond the alias,
        depth or node limits; one problem naming ``origin``, the line when known, and the limit.

    Examples
    --------
    >>> read_yaml(b"id: demo\\narms: [{id: a}]\\n", "demo.yaml")
    {'id': 'demo', 'arms': [{'id': 'a'}]}
    """
    size = len(document) if isinstance(document, bytes) else len(document.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        _refuse(origin, None, f"is {size:,} bytes long", f"a YAML document of at most {MAX_BYTES:,} bytes (1 MiB)")
    text = _decode(document, origin) if isinstance(document, bytes) else document.removeprefix("\ufeff")
    try:
        _check_shape(text, origin)
        return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 -- a safe loader, checked above
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        _refuse(origin, None if mark is None else mark.line + 1, f"is not valid YAML ({error})", "YAML syntax")


def read_yaml_file(path: str | Path) -> Any:
    """Read a YAML file with :func:`read_yaml`; a file that cannot be read is a :class:`YamlInputError`.

    The size is checked before the file is read, so a huge file is refused without reading it.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            _refuse(str(path), None, f"is {size:,} bytes long",
                    f"a YAML document of at most {MAX_BYTES:,} bytes (1 MiB)")
        document = path.read_bytes()
    except OSError as error:
        _refuse(str(path), None, f"cannot be read ({error.strerror or error})", "a readable YAML file")
    return read_yaml(document, str(path))


def _decode(document: bytes, origin: str) -> str:
    not_utf8 = utf8_problem(document, origin)
    if not_utf8 is not None:
        raise YamlInputError([not_utf8])
    return document.decode("utf-8-sig")


def _check_shape(text: str, origin: str) -> None:
    """Walk the parser's events once: alias uses, nesting depth and expanded size within the limits.

    Each open mapping or list keeps the number of nodes it stands for and the height below it; when
    an anchored node closes, its size and height are remembered, and an alias adds them where it is
    used. An alias to a node that is still open (a node containing itself) is refused outright.
    """
    anchors: dict[str, tuple[int, int]] = {}  # anchor → (nodes, height) of the node it names
    open_anchors: set[str] = set()
    stack: list[list] = []  # per open collection: [anchor, nodes, height below]
    aliases = 0
    total = 0

    def add(nodes: int, height: int, line: int, new: int) -> None:
        """A node of ``nodes`` nodes and ``height`` levels ends; ``new`` of them are not counted yet."""
        nonlocal total
        total += new
        if total > MAX_NODES:
            _refuse(origin, line, f"stands for more than {MAX_NODES:,} values once its aliases are expanded",
                    f"at most {MAX_NODES:,} values (scalars, mappings and lists), counting aliases")
        if len(stack) + height > MAX_DEPTH:
            _refuse(origin, line, f"nests mappings and lists more than {MAX_DEPTH} levels deep",
                    f"at most {MAX_DEPTH} levels of nesting, counting what aliases stand for")
        if stack:
            stack[-1][1] += nodes
            stack[-1][2] = max(stack[-1][2], height)

    for event in yaml.parse(text, Loader=SAFE_LOADER):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                _refuse(origin, line, f"uses more than {MAX_ALIASES} aliases (*name)",
                        f"at most {MAX_ALIASES} alias uses in a document")
            if event.anchor in open_anchors:
                _refuse(origin, line, f"alias *{event.anchor} is used inside the node it names",
                        "aliases to nodes that do not contain them")
            if event.anchor not in anchors:
                continue  # undefined: the composer reports it with its own message
            nodes, height = anchors[event.anchor]
            add(nodes, height, line, new=nodes)
        elif isinstance(event, yaml.ScalarEvent):
            add(1, 0, line, new=1)
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(stack) + 1 > MAX_DEPTH:
                _refuse(origin, line, f"nests mappings and lists more than {MAX_DEPTH} levels deep",
                        f"at most {MAX_DEPTH} levels of nesting, counting what aliases stand for")
            if event.anchor is not None:
                open_anchors.add(event.anchor)
            stack.append([event.anchor, 0, 0])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, nodes, height = stack.pop()
            if anchor is not None:
                open_anchors.discard(anchor)
                anchors[anchor] = (nodes + 1, height + 1)
            add(nodes + 1, height + 1, line, new=1)
        elif isinstance(event, yaml.DocumentEndEvent):
            anchors.clear()  # anchors do not cross documents


def _refuse(origin: str, line: int | None, reason: str, allowed: str) -> None:
    raise YamlInputError([DataProblem(origin, line, None, None, allowed, reason)]) from None
