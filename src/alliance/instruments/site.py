"""Site instrument files: a folder of instrument YAML files that joins the package's bank.

A site holds instruments the package cannot ship — a key that is in no source the project could
reach (the STAR-P of Murphy et al. 2022), or a licensed version — as YAML files with the package's
schema (``docs/instruments.md``), one ``<id>.yaml`` per instrument, in one folder: a protocol's
``instruments_dir:`` or the web app's ``ALLIANCE_INSTRUMENTS_DIR``. :func:`read_instruments_dir`
reads and checks that folder and gives an :class:`InstrumentBank`: the package's instruments with
the site's added.

Rules (``docs/instruments.md``, "Site instrument files"):

- every ``*.yaml`` file directly in the folder is an instrument (subfolders, such as the site's
  licensed ``wording/``, are not read here); its ``id`` must equal its file name;
- a site file may not replace a package instrument of the same id silently: it is refused, naming
  both files, unless it says ``replaces: <its id>`` (then the site's definition is used);
- reading is bounded: at most :data:`MAX_FILES` files of at most :data:`MAX_FILE_BYTES` each, every
  one parsed by the project's bounded YAML reader (:func:`alliance.yaml_input.read_yaml`:
  aliases, depth, node count).

Errors are :class:`~alliance.instruments.InstrumentDefinitionError` in the style of the package's
own definitions: the file, the key, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from alliance.yaml_input import YamlInputError, read_yaml

from .definition import Instrument, InstrumentDefinitionError, parse_instrument

__all__ = ["MAX_FILE_BYTES", "MAX_FILES", "SITE_KEYS", "InstrumentBank", "read_instruments_dir"]

MAX_FILE_BYTES = 262_144
"""Largest site instrument file, in bytes (256 KiB; the package's largest, meq30.yaml, is about 10 KB)."""
MAX_FILES = 200
"""Most instrument files in one site folder (the package ships about a dozen)."""
SITE_KEYS = ("replaces",)
"""Keys a site file may hold beyond the package schema."""


@dataclass(frozen=True)
class InstrumentBank:
    """Instruments by id, each with the file it came from: the package's, with a site's added.

    Attributes
    ----------
    instruments : mapping
        Instrument id → :class:`~alliance.instruments.Instrument`, sorted by id.
    origins : mapping
        Instrument id → the file it was read from (``instruments/<id>.yaml`` for the package's).
    directory : str or None
        The site folder, or ``None`` for the package's bank alone.
    replaced : tuple of str
        Package instruments a site file replaced (``replaces:``).
    """

    instruments: Mapping[str, Instrument]
    origins: Mapping[str, str]
    directory: str | None = None
    replaced: tuple[str, ...] = ()
    site_ids: tuple[str, ...] = field(default=())

    def __contains__(self, instrument_id: object) -> bool:
        return instrument_id in self.instruments

    def __iter__(self) -> Iterator[str]:
        return iter(self.instruments)

    def __len__(self) -> int:
        return len(self.instruments)

    def get(self, instrument_id: str) -> Instrument:
        """The definition of one instrument; ``KeyError`` naming the ids there are."""
        if instrument_id not in self.instruments:
            raise KeyError(f"unknown instrument {instrument_id!r}; instruments are {', '.join(self.instruments)}")
        return self.instruments[instrument_id]

    def site_instruments(self) -> dict[str, Instrument]:
        """The instruments read from the site folder (added or replacing), by id."""
        return {i: self.instruments[i] for i in self.site_ids}


def read_instruments_dir(directory: str | Path, package: Mapping[str, Instrument],
                         package_origins: Mapping[str, str]) -> InstrumentBank:
    """Read and check a site's folder of instrument files; give the package's bank with them added.

    Parameters
    ----------
    directory : str or Path
        The folder (absolute, or relative to the working directory; a protocol's loader resolves
        ``instruments_dir:`` against the protocol file first).
    package : mapping
        The package's instruments by id (:func:`alliance.instruments.list_instruments` before any
        site was added).
    package_origins : mapping
        The file of each package instrument, named in the error about a same-id site file.

    Returns
    -------
    InstrumentBank

    Raises
    ------
    InstrumentDefinitionError
        For a folder that is not one, too many files, a file over :data:`MAX_FILE_BYTES`, YAML the
        bounded reader refuses, a definition that does not follow the schema, an ``id`` that is
        not the file name, or a same-id package instrument without ``replaces:`` — each naming the
        file, the key, the value and what is allowed.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise InstrumentDefinitionError(
            f"instruments_dir {str(folder)!r}: is not a folder; allowed: a folder of <id>.yaml instrument files")
    files = sorted(p for p in folder.iterdir() if p.suffix == ".yaml" and p.is_file())
    if len(files) > MAX_FILES:
        raise InstrumentDefinitionError(
            f"instruments_dir {str(folder)!r}: holds {len(files)} .yaml files; allowed: at most {MAX_FILES}")
    instruments = dict(package)
    origins = dict(package_origins)
    replaced: list[str] = []
    site_ids: list[str] = []
    for path in files:
        raw = _read_file(path)
        replaces = raw.pop("replaces", None)
        instrument = parse_instrument(raw, origin=str(path))
        if instrument.id != path.stem:
            raise InstrumentDefinitionError(
                f"{path}: id: {instrument.id!r} is not the file name; allowed: {path.stem!r} (the file name without .yaml)")
        if replaces is not None and replaces != instrument.id:
            raise InstrumentDefinitionError(
                f"{path}: replaces: {replaces!r} is not this file's id; allowed: {instrument.id!r} "
                "(a site file replaces the package instrument of its own id)")
        if instrument.id in package:
            if replaces is None:
                raise InstrumentDefinitionError(
                    f"{path}: id: {instrument.id!r} is already the package's instrument "
                    f"({package_origins.get(instrument.id, 'instruments/' + instrument.id + '.yaml')}); allowed: "
                    f"another id, or 'replaces: {instrument.id}' in {path.name} to use the site's definition instead")
            replaced.append(instrument.id)
        elif replaces is not None:
            raise InstrumentDefinitionError(
                f"{path}: replaces: {replaces!r} names no package instrument; allowed: leave 'replaces' out "
                f"(a new instrument), or one of {', '.join(sorted(package))}")
        instruments[instrument.id] = instrument
        origins[instrument.id] = str(path)
        site_ids.append(instrument.id)
    ordered = dict(sorted(instruments.items()))
    return InstrumentBank(MappingProxyType(ordered), MappingProxyType(dict(sorted(origins.items()))),
                          str(folder), tuple(replaced), tuple(site_ids))


def _read_file(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InstrumentDefinitionError(
                f"{path}: is {size:,} bytes long; allowed: an instrument file of at most {MAX_FILE_BYTES:,} bytes")
        document = path.read_bytes()
    except OSError as error:
        raise InstrumentDefinitionError(f"{path}: cannot be read ({error.strerror or error}); allowed: a readable file") from None
    try:
        raw = read_yaml(document, str(path))
    except YamlInputError as error:
        raise InstrumentDefinitionError("; ".join(problem.describe() for problem in error.problems)) from None
    if not isinstance(raw, dict):
        raise InstrumentDefinitionError(
            f"{path}: top level: expected a mapping, found {type(raw).__name__}; allowed: an instrument definition")
    return raw
