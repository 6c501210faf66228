"""The bounded YAML reader of :mod:`alliance.yaml_input`, refusing with :class:`ProtocolError`.

Protocol files, web uploads of protocols, stored protocols, crisis texts, import mappings and
instrument wording files are read through here, so that their callers catch one error type. The
limits and how they are enforced are documented in :mod:`alliance.yaml_input`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alliance import yaml_input as _bounded
from alliance.yaml_input import LIMITS, MAX_ALIASES, MAX_BYTES, MAX_DEPTH, MAX_NODES, YamlInputError

from .errors import ProtocolError

__all__ = ["LIMITS", "MAX_ALIASES", "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "read_yaml", "read_yaml_file"]


def read_yaml(document: bytes | str, origin: str) -> Any:
    """:func:`alliance.yaml_input.read_yaml`, raising :class:`ProtocolError` with the same problems."""
    try:
        return _bounded.read_yaml(document, origin)
    except YamlInputError as error:
        raise ProtocolError(error.problems) from None


def read_yaml_file(path: str | Path) -> Any:
    """:func:`alliance.yaml_input.read_yaml_file`, raising :class:`ProtocolError` with the same problems."""
    try:
        return _bounded.read_yaml_file(path)
    except YamlInputError as error:
        raise ProtocolError(error.problems) from None
