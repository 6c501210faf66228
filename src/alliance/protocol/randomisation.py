"""The ``randomisation:`` section of a protocol, and the concealed allocation list it generates.

Method: **stratified permuted blocks** with **randomly varying block sizes**. Participants are
grouped into strata (every combination of the stratification factors' values, e.g. site × sex);
each stratum has its own list of arms, made of consecutive blocks. A block of size *b* holds each
arm in proportion to the ratio — with ratio weights *w_a* summing to *W*, exactly *b · w_a / W*
allocations of arm *a* — in a random order (a uniformly random permutation), so the arms are in
the exact ratio at the end of every block of every stratum and never further from it than half a
block in between. Each block's size is drawn uniformly at random from ``block_sizes`` (each a
multiple of *W*): with a fixed, known block size the last allocations of a block can be deduced
from the earlier ones, which unmasks the sequence; varying sizes make the end of a block, and so
the next arm, unpredictable (Schulz & Grimes 2002; Efird 2011).

Reproducibility: the list is a pure function of the section and one integer seed. Each stratum
has its own numpy ``Generator`` (PCG64), seeded by ``SeedSequence(seed, spawn_key=...)`` where the
spawn key is the first 128 bits of the SHA-256 of the stratum's name (:func:`stratum_key`) — not
Python's ``hash()``, which changes between processes. So a stratum's list depends on the seed
and its own name only: adding a site adds a stratum without changing the others, and raising
``list_length`` extends every stratum's list without changing the allocations already in it.
numpy promises no stream compatibility of ``Generator`` across versions (NEP 19), so an
:class:`AllocationList` records the numpy version; store the generated list, not only the seed.

Concealment — that nobody who enrols participants can see, or work out, the next arm before the
participant is irrevocably entered (Schulz & Grimes 2002) — is enforced by the web app (who may
see the list and the seed, and an allocation revealed only after enrolment is recorded), not here.
This module is pure: it generates the list and reads the next entry of it.

Schema (``docs/protocol.md``, "Randomisation")::

    randomisation:
      method: stratified_permuted_blocks   # the one method
      ratio: {immediate: 1, delayed: 1}    # arm id: whole-number weight ≥ 1 (an arm left out: 1)
      block_sizes: [4, 6]                  # each a multiple of the ratio's sum; one drawn per block
      strata:                              # participant covariates; a name, or {name: [values]}
        - site
        - sex: [female, male]
      list_length: 200                     # allocations per stratum (rounded up to whole blocks)

A protocol without the section is not randomised by the software: staff type each participant's
arm, as before.

References
----------
Schulz KF, Grimes DA (2002). Generation of allocation sequences in randomised trials: chance, not
choice. Lancet 359(9305):515-519. Schulz KF, Grimes DA (2002). Allocation concealment in
randomised trials: defending against deciphering. Lancet 359(9306):614-618. Schulz KF, Grimes DA
(2002). Unequal group sizes in randomised trials: guarding against guessing. Lancet
359(9310):966-970 (permuted blocks of fixed size are guessable; vary them at random). Efird J (2011). Blocked
randomization with randomly selected block sizes. Int J Environ Res Public Health 8(1):15-20.
ICH E9 (1998), Statistical principles for clinical trials, §2.3.1 (blocks, their length withheld
from investigators). Kernan WN et al. (1999). Stratified randomization for clinical trials.
J Clin Epidemiol 52(1):19-26 (few strata: over-stratification leaves blocks unfilled).

Examples
--------
>>> spec = RandomisationSpec(ratio={"immediate": 1, "delayed": 1}, block_sizes=(4, 6),
...                          strata=(StratumFactor("site", ("a", "b")),), list_length=12)
>>> allocations = allocation_list(spec, seed=20240517)
>>> [s.key for s in allocations.strata]
['site=a', 'site=b']
>>> first = allocate(allocations, {"site": "b"}, already_allocated=0)
>>> (first.stratum, first.sequence, first.block) == ("site=b", 1, 1) and first.arm in spec.ratio
True
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import ID_ALLOWED, ID_PATTERN, Reader

__all__ = ["MAX_LIST_LENGTH", "MAX_STRATA", "METHODS", "Allocation", "AllocationList", "ListExhaustedError",
           "RandomisationError", "RandomisationSpec", "StratumFactor", "StratumList", "UnknownStratumError",
           "allocate", "allocation_list", "read_randomisation", "stratum_key"]

METHODS = ("stratified_permuted_blocks",)
# Bounds that keep a generated list small (10,000 × 1,000 allocations at most) and far above any
# real trial; Kernan et al. (1999) advise few strata in any case.
MAX_LIST_LENGTH = 10_000
MAX_STRATA = 1_000
MAX_BLOCK_SIZE = 1_000
DEFAULT_LIST_LENGTH = 200
# The name of the one stratum of an unstratified list (a stratified key always holds "=").
UNSTRATIFIED = "all"
_KEYS = ("method", "ratio", "block_sizes", "strata", "list_length")
# participants.csv columns that are not a covariate to stratify by (docs/data.md).
_NOT_STRATA = {"participant_id": "is the participant's id, not a covariate",
               "arm": "is the allocation itself",
               "facilitator_ids": "is a list of facilitators, not a category",
               "enrolled_on": "is a date, not a category"}
# Characters of the stratum-key syntax (site=a;sex=f), refused in values so that a key names one stratum.
_KEY_CHARACTERS = ("=", ";")


class RandomisationError(ValueError):
    """A randomisation request that cannot be met: bad arguments, an unknown stratum, an exhausted list."""


class UnknownStratumError(RandomisationError, LookupError):
    """A stratum (factor or value) the allocation list does not have."""


class ListExhaustedError(RandomisationError):
    """Every allocation of a stratum's list is used: a longer list is needed."""


@dataclass(frozen=True)
class StratumFactor:
    """One stratification factor: a participant covariate and, when the protocol lists them, its values.

    Attributes
    ----------
    name : str
        The ``participants.csv`` column (``site``, ``sex``).
    values : tuple of str
        The allowed values, in the protocol's order; empty when the protocol names the factor only
        (the values are then given to :func:`allocation_list`).
    """

    name: str
    values: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values)}


@dataclass(frozen=True)
class RandomisationSpec:
    """The protocol's ``randomisation:`` section (stratified permuted blocks of random size).

    Attributes
    ----------
    ratio : dict
        Arm id → whole-number weight ≥ 1, in the protocol's arm order.
    block_sizes : tuple of int
        The block sizes one is drawn from (uniformly) for each block; each a multiple of the ratio's sum.
    strata : tuple of StratumFactor
        The stratification factors (none: one stratum, ``"all"``).
    list_length : int
        Allocations generated per stratum; the list ends at the first whole block at or past it.
    method : str
        ``stratified_permuted_blocks`` (:data:`METHODS`).
    """

    ratio: dict[str, int]
    block_sizes: tuple[int, ...]
    strata: tuple[StratumFactor, ...] = ()
    list_length: int = DEFAULT_LIST_LENGTH
    method: str = "stratified_permuted_blocks"

    @property
    def ratio_sum(self) -> int:
        return sum(self.ratio.values())

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.strata)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "ratio": dict(self.ratio), "block_sizes": list(self.block_sizes),
                "strata": [f.to_dict() for f in self.strata], "list_length": self.list_length}


@dataclass(frozen=True)
class Allocation:
    """One allocation: the arm of the next participant of a stratum.

    Attributes
    ----------
    stratum : str
        The stratum's name (:func:`stratum_key`).
    sequence : int
        Its place in the stratum's list, from 1 (the stratum's *sequence*-th participant).
    block : int
        The block it belongs to, from 1.
    block_size : int
        That block's size.
    position_in_block : int
        Its place in the block, from 1.
    arm : str
        The arm id.
    """

    stratum: str
    sequence: int
    block: int
    block_size: int
    position_in_block: int
    arm: str

    def to_dict(self) -> dict[str, Any]:
        return {"stratum": self.stratum, "sequence": self.sequence, "block": self.block,
                "block_size": self.block_size, "position_in_block": self.position_in_block, "arm": self.arm}


@dataclass(frozen=True)
class StratumList:
    """The allocation list of one stratum.

    Attributes
    ----------
    key : str
        The stratum's name (:func:`stratum_key`), e.g. ``sex=female;site=a``.
    values : dict
        Factor → value of the stratum, in the protocol's factor order.
    arms : tuple of str
        The arms in allocation order.
    block_sizes : tuple of int
        The size of each block in order; they sum to ``len(arms)``.
    """

    key: str
    values: dict[str, str]
    arms: tuple[str, ...]
    block_sizes: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.arms)

    def allocation(self, index: int) -> Allocation:
        """The allocation at 0-based ``index`` of the list."""
        start = 0
        for block, size in enumerate(self.block_sizes, start=1):
            if index < start + size:
                return Allocation(self.key, index + 1, block, size, index - start + 1, self.arms[index])
            start += size
        raise IndexError(index)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": dict(self.values), "arms": list(self.arms),
                "block_sizes": list(self.block_sizes)}


@dataclass(frozen=True)
class AllocationList:
    """A generated allocation list: one :class:`StratumList` per stratum, reproducible from the seed.

    Attributes
    ----------
    spec : RandomisationSpec
    seed : int
    strata : tuple of StratumList
        In the order of the Cartesian product of the factors' values (first factor slowest).
    numpy_version : str
        The numpy that generated it (``Generator`` streams may change between numpy versions).
    """

    spec: RandomisationSpec
    seed: int
    strata: tuple[StratumList, ...]
    numpy_version: str = field(default=np.__version__)

    def stratum(self, key: str) -> StratumList:
        """The list of the stratum named ``key``; :class:`UnknownStratumError` when there is none."""
        for stratum in self.strata:
            if stratum.key == key:
                return stratum
        raise UnknownStratumError(f"the allocation list has no stratum {key!r}; strata: "
                                  + ", ".join(s.key for s in self.strata))

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "seed": self.seed, "numpy_version": self.numpy_version,
                "strata": [s.to_dict() for s in self.strata]}

    def to_frame(self) -> pd.DataFrame:
        """One row per allocation.

        Columns: ``stratum``, one column per factor, ``sequence``, ``block``, ``block_size``,
        ``position_in_block``, ``arm``.
        """
        rows = []
        for stratum in self.strata:
            for index in range(len(stratum)):
                allocation = stratum.allocation(index).to_dict()
                rows.append({"stratum": stratum.key, **stratum.values,
                             **{k: v for k, v in allocation.items() if k != "stratum"}})
        columns = ["stratum", *self.spec.factor_names, "sequence", "block", "block_size", "position_in_block",
                   "arm"]
        return pd.DataFrame(rows, columns=columns)


def stratum_key(values: Mapping[str, Any]) -> str:
    """The stable name of a stratum: ``factor=value`` pairs sorted by factor, joined by ``;``.

    Parameters
    ----------
    values : mapping
        Factor → value (text, or a whole number written as text); empty for an unstratified list.

    Returns
    -------
    str
        E.g. ``sex=female;site=a`` (the same whatever the mapping's order); ``all`` without factors.

    Raises
    ------
    RandomisationError
        For a value that is not text or a whole number, is empty, or holds ``=`` or ``;``.

    Examples
    --------
    >>> stratum_key({"site": "b", "sex": "female"})
    'sex=female;site=b'
    >>> stratum_key({})
    'all'
    """
    if not values:
        return UNSTRATIFIED
    return ";".join(f"{name}={_value_text(values[name], name)}" for name in sorted(values))


def allocation_list(spec: RandomisationSpec, seed: int,
                    strata_values: Mapping[str, Sequence[Any]] | None = None) -> AllocationList:
    """Generate the allocation list of every stratum by stratified permuted blocks of random size.

    Parameters
    ----------
    spec : RandomisationSpec
        The protocol's ``randomisation:`` section.
    seed : int
        A whole number ≥ 0 (e.g. ``secrets.randbits(64)``, kept as secret as the list): the list is
        a function of it and ``spec`` alone.
    strata_values : mapping, optional
        Factor → its values, for the factors whose values the protocol does not list (e.g. the
        sites); for a factor it lists, a subset of them (default: all of them).

    Returns
    -------
    AllocationList
        Strata in the order of the Cartesian product of the values (first factor slowest).

    Raises
    ------
    RandomisationError
        For a seed that is not a whole number ≥ 0, a factor without values, a value the protocol
        does not list for its factor, a factor the spec does not have, or more than
        :data:`MAX_STRATA` strata.

    Notes
    -----
    For each stratum *s*, a ``Generator(PCG64(SeedSequence(seed, spawn_key=k(s))))`` with *k(s)* the
    first four 32-bit words of SHA-256(:func:`stratum_key` (*s*)) draws, block after block, the
    block size *b* uniformly from ``block_sizes`` and a uniform permutation of the block's *b · w_a / W*
    copies of each arm *a* (ratio weights *w_a*, sum *W*), until the list has at least
    ``list_length`` allocations. Every block is complete, so the list holds the arms in the
    exact ratio at the end of each block.

    Examples
    --------
    >>> spec = RandomisationSpec(ratio={"drug": 2, "placebo": 1}, block_sizes=(3, 6), list_length=6)
    >>> arms = allocation_list(spec, seed=7).stratum("all").arms
    >>> len(arms) >= 6 and arms.count("drug") == 2 * arms.count("placebo")
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise RandomisationError(f"seed {seed!r} is not a whole number ≥ 0")
    factors = _factor_values(spec, strata_values or {})
    count = int(np.prod([len(values) for _, values in factors])) if factors else 1
    if count > MAX_STRATA:
        raise RandomisationError(f"{' × '.join(str(len(v)) for _, v in factors)} = {count} strata; allowed: at "
                                 f"most {MAX_STRATA} (stratify by fewer factors or fewer values)")
    names = [name for name, _ in factors]
    strata = []
    for combination in itertools.product(*[values for _, values in factors]):
        values = dict(zip(names, combination, strict=True))
        key = stratum_key(values)
        arms, sizes = _permuted_blocks(spec, int(seed), key)
        strata.append(StratumList(key=key, values=values, arms=arms, block_sizes=sizes))
    return AllocationList(spec=spec, seed=int(seed), strata=tuple(strata))


def allocate(allocations: AllocationList, stratum: Mapping[str, Any], already_allocated: int) -> Allocation:
    """The next allocation of a stratum: entry ``already_allocated + 1`` of its list.

    Parameters
    ----------
    allocations : AllocationList
    stratum : mapping
        Factor → the participant's value, for exactly the list's factors (``{}`` when unstratified).
    already_allocated : int
        How many participants of that stratum were allocated before (≥ 0).

    Returns
    -------
    Allocation

    Raises
    ------
    UnknownStratumError
        For a missing or extra factor, or a value the list has no stratum for.
    ListExhaustedError
        When the stratum's list has no allocation left.
    RandomisationError
        For ``already_allocated`` that is not a whole number ≥ 0.

    Examples
    --------
    >>> spec = RandomisationSpec(ratio={"immediate": 1, "delayed": 1}, block_sizes=(2,), list_length=2)
    >>> allocations = allocation_list(spec, seed=1)
    >>> {allocate(allocations, {}, n).arm for n in (0, 1)} == {"immediate", "delayed"}
    True
    """
    if isinstance(already_allocated, bool) or not isinstance(already_allocated, int | np.integer) \
            or already_allocated < 0:
        raise RandomisationError(f"already_allocated {already_allocated!r} is not a whole number ≥ 0")
    factors = allocations.spec.factor_names
    missing = [name for name in factors if name not in stratum]
    extra = [name for name in stratum if name not in factors]
    if missing or extra:
        found = "; ".join(([f"lacks {', '.join(missing)}"] if missing else [])
                          + ([f"has {', '.join(map(str, extra))}, not a factor of the list"] if extra else []))
        raise UnknownStratumError(f"stratum {dict(stratum)!r} {found}; the list is stratified by "
                                  + (", ".join(factors) or "nothing (give {})"))
    try:
        key = stratum_key(stratum)
    except RandomisationError as error:
        raise UnknownStratumError(str(error)) from None
    for stratum_list in allocations.strata:
        if stratum_list.key == key:
            break
    else:
        unknown = [f"{name} {_value_text(stratum[name], name)!r} (allowed: {', '.join(values)})"
                   for name, values in _values_by_factor(allocations).items()
                   if _value_text(stratum[name], name) not in values]
        raise UnknownStratumError(f"the allocation list has no stratum {key}: " + "; ".join(unknown))
    if already_allocated >= len(stratum_list):
        raise ListExhaustedError(
            f"stratum {key}: all {len(stratum_list)} allocations of its list are used "
            f"({already_allocated} participants allocated); generate the list again with a larger "
            "list_length and the same seed, which extends every stratum's list without changing it")
    return stratum_list.allocation(int(already_allocated))


def _values_by_factor(allocations: AllocationList) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {name: [] for name in allocations.spec.factor_names}
    for stratum in allocations.strata:
        for name, value in stratum.values.items():
            if value not in out[name]:
                out[name].append(value)
    return out


def _value_text(value: Any, factor: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | np.integer):
        raise RandomisationError(f"factor {factor}: value {value!r} is not a text or a whole number")
    text = str(value).strip()
    if not text or any(c in text for c in _KEY_CHARACTERS):
        raise RandomisationError(f"factor {factor}: value {value!r} is not a stratum value; allowed: a "
                                 f"non-empty text without {' or '.join(_KEY_CHARACTERS)}")
    return text


def _factor_values(spec: RandomisationSpec, given: Mapping[str, Sequence[Any]]) -> list[tuple[str, list[str]]]:
    """Each factor with the values to generate strata for."""
    unknown = [name for name in given if name not in spec.factor_names]
    if unknown:
        raise RandomisationError(f"strata_values names {', '.join(map(str, unknown))}, which the "
                                 f"randomisation does not stratify by; factors: {', '.join(spec.factor_names) or 'none'}")
    out = []
    for factor in spec.strata:
        raw = given.get(factor.name)
        if raw is None or (not isinstance(raw, str) and len(raw) == 0):
            if not factor.values:
                raise RandomisationError(f"factor {factor.name} has no values: the protocol lists none, so give "
                                         f"them in strata_values (e.g. {{{factor.name!r}: ['a', 'b']}})")
            out.append((factor.name, list(factor.values)))
            continue
        if isinstance(raw, str):
            raise RandomisationError(f"strata_values[{factor.name!r}] is {raw!r}, not a list of values")
        values = list(dict.fromkeys(_value_text(v, factor.name) for v in raw))
        undeclared = [v for v in values if factor.values and v not in factor.values]
        if undeclared:
            raise RandomisationError(f"factor {factor.name}: value {', '.join(map(repr, undeclared))} is not "
                                     f"among the protocol's values; allowed: {', '.join(factor.values)}")
        out.append((factor.name, values))
    return out


def _stream(seed: int, key: str) -> np.random.Generator:
    # SHA-256, not hash(): Python salts str hashes per process (PYTHONHASHSEED).
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    words = tuple(int.from_bytes(digest[i:i + 4], "big") for i in range(0, 16, 4))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=words)))


def _permuted_blocks(spec: RandomisationSpec, seed: int, key: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    rng = _stream(seed, key)
    total = spec.ratio_sum
    arms: list[str] = []
    sizes: list[int] = []
    while len(arms) < spec.list_length:
        size = int(spec.block_sizes[int(rng.integers(len(spec.block_sizes)))])
        block = [arm for arm, weight in spec.ratio.items() for _ in range(size // total * weight)]
        arms.extend(block[i] for i in rng.permutation(size))
        sizes.append(size)
    return tuple(arms), tuple(sizes)


# -- the protocol section -----------------------------------------------------------------------


def read_randomisation(r: Reader, raw: Any, design: Any) -> RandomisationSpec | None:
    """Read and check a protocol's ``randomisation:`` section (``None``: not randomised).

    Parameters
    ----------
    r : Reader
        Problems are recorded here, with YAML paths starting at ``randomisation``.
    raw : mapping or None
    design : Design
        The ratio's arms must be its arms (it needs two or more); strata may not be its
        identifier columns.

    Returns
    -------
    RandomisationSpec or None
        ``None`` without the section; meaningful only when ``r`` recorded no problem.
    """
    if raw is None:
        return None
    before = len(r.problems)
    section = r.mapping(raw, "randomisation", _KEYS, ("method", "block_sizes"))
    if not section:
        return None
    method = section.get("method")
    if method is not None:
        r.choice(method, "randomisation.method", METHODS)
    if len(design.arm_ids) < 2:
        r.problem("arms", list(design.arm_ids), "has fewer than two arms: there is nothing to randomise between",
                  "two or more arms, or no randomisation section")
    ratio = _read_ratio(r, section.get("ratio"), design)
    block_sizes = _read_block_sizes(r, section.get("block_sizes"), sum(ratio.values()) if ratio else None)
    strata = _read_strata(r, section.get("strata"), design)
    list_length = section.get("list_length", DEFAULT_LIST_LENGTH)
    if isinstance(list_length, bool) or not isinstance(list_length, int) \
            or not 1 <= list_length <= MAX_LIST_LENGTH:
        r.problem("randomisation.list_length", list_length, "is not a list length",
                  f"a whole number of allocations per stratum, 1–{MAX_LIST_LENGTH:,}")
    declared = [len(f.values) for f in strata if f.values]
    if declared and int(np.prod(declared)) > MAX_STRATA:
        r.problem("randomisation.strata", section.get("strata"), f"makes {int(np.prod(declared)):,} strata",
                  f"at most {MAX_STRATA:,} strata (the product of the numbers of values)")
    if len(r.problems) > before:
        return None
    return RandomisationSpec(ratio=ratio, block_sizes=block_sizes, strata=strata, list_length=list_length,
                             method=str(method))


def _read_ratio(r: Reader, raw: Any, design: Any) -> dict[str, int]:
    key = "randomisation.ratio"
    arms = design.arm_ids
    if raw is None:
        return {arm: 1 for arm in arms}
    if not isinstance(raw, dict) or not raw:
        r.problem(key, raw, "is not a ratio", f"a mapping of arm id to a whole-number weight ≥ 1 ({', '.join(arms)})")
        return {}
    ok = True
    for arm, weight in raw.items():
        if arm not in arms:
            r.problem(f"{key}.{arm}", arm, "is not an arm of the protocol", ", ".join(arms))
            ok = False
        elif isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_BLOCK_SIZE:
            r.problem(f"{key}.{arm}", weight, "is not a weight", f"a whole number 1–{MAX_BLOCK_SIZE:,}")
            ok = False
    # An arm the ratio leaves out has weight 1 (the default of every arm), in the protocol's arm order.
    return {arm: raw.get(arm, 1) for arm in arms} if ok else {}


def _read_block_sizes(r: Reader, raw: Any, ratio_sum: int | None) -> tuple[int, ...]:
    key = "randomisation.block_sizes"
    allowed = (f"whole numbers, each a multiple of the ratio's sum ({ratio_sum})" if ratio_sum
               else "whole numbers, each a multiple of the ratio's sum")
    # None and [] are reported as required by the section's mapping
    sizes = r.listing(raw, key, f"a non-empty list of {allowed}", non_empty=True) if raw not in (None, []) else []
    out = []
    for i, size in enumerate(sizes):
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BLOCK_SIZE:
            r.problem(f"{key}[{i}]", size, "is not a block size", f"a whole number 1–{MAX_BLOCK_SIZE:,}")
        elif ratio_sum and size % ratio_sum:
            r.problem(f"{key}[{i}]", size, f"is not a multiple of the ratio's sum ({ratio_sum})",
                      f"a multiple of {ratio_sum}: " + ", ".join(str(ratio_sum * k) for k in range(1, 5)) + ", …")
        elif size in out:
            r.problem(f"{key}[{i}]", size, "appears twice", "each block size once")
        else:
            out.append(size)
    return tuple(out)


def _read_strata(r: Reader, raw: Any, design: Any) -> tuple[StratumFactor, ...]:
    key = "randomisation.strata"
    what = "a list of covariate names, each a name or {name: [values]}, or a mapping {name: [values] or null}"
    if raw is None:
        return ()
    if isinstance(raw, dict):
        entries = [(f"{key}.{name}", name, values) for name, values in raw.items()]
    elif isinstance(raw, list):
        entries = []
        for i, entry in enumerate(raw):
            if isinstance(entry, dict) and len(entry) == 1:
                ((name, values),) = entry.items()
                entries.append((f"{key}[{i}]", name, values))
            elif isinstance(entry, str):
                entries.append((f"{key}[{i}]", entry, None))
            else:
                r.problem(f"{key}[{i}]", entry, "is not a stratification factor", "a name or {name: [values]}")
    else:
        r.problem(key, raw, "is not a list of stratification factors", what)
        return ()
    factors: list[StratumFactor] = []
    for where, name, values in entries:
        if not isinstance(name, str) or not ID_PATTERN.fullmatch(name):
            r.problem(where, name, "is not a covariate name", ID_ALLOWED)
            continue
        if name in _NOT_STRATA:
            r.problem(where, name, _NOT_STRATA[name], "a covariate column of participants.csv (site, sex, …)")
            continue
        if name in design.identifiers:
            r.problem(where, name, "identifies a person: the list is not stratified by identifiers",
                      "a covariate column that is not in identifiers: " + ", ".join(design.identifiers))
            continue
        if name in [f.name for f in factors]:
            r.problem(where, name, "appears twice", "each factor once")
            continue
        factors.append(StratumFactor(name, _read_values(r, values, f"{where}.{name}" if "[" in where else where)))
    return tuple(factors)


def _read_values(r: Reader, raw: Any, key: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    allowed = ("a non-empty list of values, each a text or a whole number without = or ; (quote yes, no, "
               "true, false: YAML reads them as true/false)")
    if not isinstance(raw, list) or not raw:
        r.problem(key, raw, "is not a list of values", allowed)
        return ()
    out: list[str] = []
    for i, value in enumerate(raw):
        try:
            text = _value_text(value, key)
        except RandomisationError:
            r.problem(f"{key}[{i}]", value, "is not a stratum value", allowed)
            continue
        if text in out:
            r.problem(f"{key}[{i}]", value, "appears twice", "each value once")
            continue
        out.append(text)
    return tuple(out)
