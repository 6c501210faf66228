"""The one protocol loader: read a YAML file, check every section, give a :class:`Protocol`.

:func:`parse_protocol` checks the design first, then the ``alerts:``, ``analysis:`` and
``power:`` sections against it, and raises one :class:`ProtocolError` listing every problem of
every section (file, YAML path, value, what is allowed). A section the file leaves out is taken
from the default protocol, ``levin2024.yaml`` in this package (Levin et al. 2024), as each
section's reader documents. :func:`load_protocol` reads a file; :func:`default_protocol` gives
the built-in one.

YAML is read by :func:`~alliance.protocol.yaml_input.read_yaml`, the one bounded reader (size,
encoding, aliases, nesting; no Python objects are built from a file), also used by the web app.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from alliance import instruments as bank

from .alerts import read_alerts
from .analysis import AnalysisPlan, read_analysis
from .change import read_reliable_change
from .design import DESIGN_KEYS, read_design
from .deviations import read_deviations
from .errors import ProtocolError, Reader
from .expected import read_expected_response
from .invitations import read_invitations
from .model import SECTIONS, Protocol
from .power import read_power
from .quality import read_quality
from .randomisation import read_randomisation
from .safety import read_safety
from .yaml_input import read_yaml, read_yaml_file

__all__ = ["DEFAULT_FILE", "default_protocol", "load_protocol", "parse_analysis_plan", "parse_protocol",
           "write_protocol"]

DEFAULT_FILE = "levin2024.yaml"
TOP_KEYS = DESIGN_KEYS + SECTIONS


def parse_protocol(raw: Any, origin: str = "<protocol>", base_dir: str | Path | None = None) -> Protocol:
    """Build and check a protocol from its parsed YAML mapping.

    Parameters
    ----------
    raw : dict
        The mapping read from the YAML file.
    origin : str
        The file name, used in error messages.
    base_dir : str or Path, optional
        The folder a relative ``instruments_dir:`` is resolved against (the protocol file's
        folder; :func:`load_protocol` passes it); the working directory when not given.

    Returns
    -------
    Protocol

    Raises
    ------
    ProtocolError
        Listing every problem of every section, each with the file, the YAML path, the value and
        what is allowed.

    Notes
    -----
    ``instruments_dir:`` adds the site's instrument files to the bank of the process
    (:func:`alliance.instruments.add_instruments_dir`) before the timepoints' instruments are
    checked, so that a site's instrument (e.g. STAR-P) is known wherever the bank is read.
    """
    return _parse(raw, origin, _default_sections(), base_dir)


def _parse(raw: Any, origin: str, defaults: dict[str, Any] | None, base_dir: str | Path | None = None) -> Protocol:
    r = Reader(origin)
    top = r.mapping(raw, "", TOP_KEYS, ("id", "name", "arms", "timepoints"))
    if top.get("instruments_dir") is not None:
        top = {**top, "instruments_dir": _add_site_instruments(r, top["instruments_dir"], base_dir)}
        if r.problems:  # the timepoints name the site's instruments: check them on a sound bank
            raise ProtocolError(r.problems)
    design = read_design(r, top)
    if r.problems:
        # The sections refer to the design's timepoints and instruments: check them on a sound one.
        raise ProtocolError(r.problems)
    sections = {name: copy.deepcopy(top[name]) for name in SECTIONS if top.get(name) is not None}
    alerts = read_alerts(r, top.get("alerts"), design, (defaults or {}).get("alerts"))
    analysis = read_analysis(r, top.get("analysis"), (defaults or {}).get("analysis"))
    for index, spec in enumerate(analysis.analyses):
        arm = spec.options.get("arm")
        if arm is not None and arm not in design.arm_ids:
            r.problem(f"analysis.analyses[{index}] ({spec.id}).arm", arm, "is not an arm of the protocol",
                      ", ".join(design.arm_ids))
    power = read_power(r, top.get("power"), design, (defaults or {}).get("power"))
    # A protocol without the section gets the defaults (after_dosing excluded), not the default
    # file's section: the defaults are the section's own (alliance.protocol.deviations).
    deviations = read_deviations(r, top.get("deviations"))
    # Likewise: a protocol without the section sends no email (a site opts in), whatever the default file says.
    invitations = read_invitations(r, top.get("invitations"), design)
    # Likewise: a protocol without the section has no custom data-quality rules (the default
    # file's rule is the Levin trial's entry criterion, not a default for other studies).
    quality = read_quality(r, top.get("quality"), design)
    # The default measures are the plan's roles (alliance total, outcome), so the plan comes first.
    expected_response = read_expected_response(r, top.get("expected_response"), design, analysis.roles,
                                                (defaults or {}).get("expected_response"))
    reliable_change = read_reliable_change(r, top.get("reliable_change"), design,
                                           (defaults or {}).get("reliable_change"))
    # Likewise: a protocol without the section is not randomised by the software.
    randomisation = read_randomisation(r, top.get("randomisation"), design)
    # Likewise: without the section, the default vital-sign thresholds and no washout rule
    # (alliance.protocol.safety), whatever the default file says.
    safety = read_safety(r, top.get("safety"))
    r.raise_if_any()
    return Protocol(**{name: getattr(design, name) for name in design.__dataclass_fields__},
                    alerts=alerts, analysis=analysis, power=power, deviations=deviations, invitations=invitations,
                    quality=quality, expected_response=expected_response,
                    reliable_change=reliable_change, randomisation=randomisation,
                    safety=safety, sections=sections)


def _add_site_instruments(r: Reader, value: Any, base_dir: str | Path | None) -> str:
    if not isinstance(value, str) or not value.strip():
        r.problem("instruments_dir", value, "is not a folder name",
                  "a folder of <id>.yaml instrument files, relative to the protocol file or absolute")
        return ""
    folder = Path(value).expanduser()
    if not folder.is_absolute():
        folder = Path(base_dir or ".") / folder
    folder = folder.resolve()
    if not folder.is_dir():
        r.problem("instruments_dir", value, f"names no folder ({folder})",
                  "the folder of the site's <id>.yaml instrument files (e.g. the STAR-P, which the package "
                  "does not ship), relative to the protocol file or absolute; see docs/instruments.md")
        return str(folder)
    try:
        bank.add_instruments_dir(folder)
    except bank.InstrumentDefinitionError as error:
        r.problem("instruments_dir", value, f"holds an instrument file that is refused — {error}")
    return str(folder)


def parse_analysis_plan(raw: Any, origin: str = "analysis plan") -> AnalysisPlan:
    """Check an analysis plan given on its own (e.g. ``run_analysis(plan=...)``), as the loader would.

    Parameters
    ----------
    raw : mapping
        An ``analysis:`` section; top-level keys it leaves out come from the default protocol's.
    origin : str
        Where it came from, for error messages.

    Returns
    -------
    AnalysisPlan

    Raises
    ------
    ProtocolError
        Listing every problem, with YAML paths starting at ``analysis``.
    """
    r = Reader(origin)
    plan = read_analysis(r, raw, _default_sections()["analysis"])
    r.raise_if_any()
    return plan


@cache
def _default_raw() -> dict[str, Any]:
    text = (resources.files(__package__) / DEFAULT_FILE).read_text(encoding="utf-8")
    return read_yaml(text, DEFAULT_FILE)


def _default_sections() -> dict[str, Any]:
    return {name: _default_raw().get(name) for name in SECTIONS}


@cache
def default_protocol() -> Protocol:
    """The built-in protocol of the Levin et al. (2024) trial (``alliance/protocol/levin2024.yaml``).

    Returns
    -------
    Protocol
        With the default alert rules, analysis plan (Levin 2024 and the Murphy 2022 mediation)
        and power tests.

    References
    ----------
    Levin AW et al. (2024). PLoS ONE 19(3):e0300501. Davis AK et al. (2021). JAMA Psychiatry
    78(5):481-489. Murphy R et al. (2022). Front Pharmacol 12:788155.
    """
    return _parse(copy.deepcopy(_default_raw()), DEFAULT_FILE, None)


def load_protocol(path: str | Path) -> Protocol:
    """Read and check a protocol YAML file (schema: ``docs/protocol.md``).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Protocol

    Raises
    ------
    ProtocolError
        Naming the file and the YAML path of every problem; also for a file that cannot be
        read, is not UTF-8, is not valid YAML or is beyond the limits of
        :mod:`alliance.protocol.yaml_input` (1 MiB, 100 aliases, 50 levels of nesting).
    """
    path = Path(path)
    return parse_protocol(read_yaml_file(path), origin=str(path), base_dir=path.parent)


def write_protocol(protocol: Protocol, path: str | Path) -> None:
    """Write a protocol as YAML (:meth:`Protocol.to_yaml`)."""
    Path(path).write_text(protocol.to_yaml(), encoding="utf-8")
