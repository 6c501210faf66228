"""The protocol's ``randomisation:`` section and the stratified permuted-block allocation list."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from collections import Counter

import pytest

from alliance.protocol import (
    ListExhaustedError,
    ProtocolError,
    RandomisationError,
    RandomisationSpec,
    StratumFactor,
    UnknownStratumError,
    allocate,
    allocation_list,
    default_protocol,
    parse_protocol,
    stratum_key,
)

SECTION = {"method": "stratified_permuted_blocks", "ratio": {"immediate": 1, "delayed": 1},
           "block_sizes": [4, 6], "strata": ["site", {"sex": ["female", "male"]}], "list_length": 200}


def _with(section) -> dict:
    raw = copy.deepcopy(default_protocol().to_dict())
    raw["randomisation"] = section
    return raw


def _problems(section) -> list[tuple]:
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(_with(section))
    return [(p.column, p.value, p.reason) for p in caught.value.problems]


def _spec(ratio=None, block_sizes=(4, 6), strata=(), list_length=200) -> RandomisationSpec:
    return RandomisationSpec(ratio=ratio or {"immediate": 1, "delayed": 1}, block_sizes=tuple(block_sizes),
                             strata=tuple(strata), list_length=list_length)


# -- the section ---------------------------------------------------------------------------------


def test_the_section_is_read_into_its_type_and_kept_as_written():
    protocol = parse_protocol(_with(copy.deepcopy(SECTION)))
    spec = protocol.randomisation
    assert spec == RandomisationSpec(ratio={"immediate": 1, "delayed": 1}, block_sizes=(4, 6),
                                     strata=(StratumFactor("site"), StratumFactor("sex", ("female", "male"))),
                                     list_length=200, method="stratified_permuted_blocks")
    assert protocol.to_dict()["randomisation"] == SECTION
    assert parse_protocol(protocol.to_dict()) == protocol


def test_without_the_section_the_protocol_is_not_randomised():
    assert default_protocol().randomisation is None
    assert "randomisation" not in default_protocol().sections


def test_defaults_ratio_one_each_list_length_200_and_strata_as_a_mapping():
    spec = parse_protocol(_with({"method": "stratified_permuted_blocks", "block_sizes": [2],
                                 "strata": {"site": None, "sex": ["f", "m"]}})).randomisation
    assert (spec.ratio, spec.list_length) == ({"immediate": 1, "delayed": 1}, 200)
    assert spec.strata == (StratumFactor("site"), StratumFactor("sex", ("f", "m")))
    # an arm the ratio leaves out keeps its weight of 1, in the protocol's arm order
    spec = parse_protocol(_with({**SECTION, "ratio": {"delayed": 2}, "block_sizes": [3]})).randomisation
    assert spec.ratio == {"immediate": 1, "delayed": 2}


def test_a_block_size_that_is_not_a_multiple_of_the_ratio_sum_is_refused():
    # ratio 2:1 sums to 3; a block of 4 cannot hold the arms in that ratio (4 · 2/3 is not whole)
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(_with({**SECTION, "ratio": {"immediate": 2, "delayed": 1}, "block_sizes": [3, 4]}))
    (problem,) = caught.value.problems
    assert (problem.column, problem.value, problem.reason) == (
        "randomisation.block_sizes[1]", 4, "is not a multiple of the ratio's sum (3)")
    assert problem.allowed.startswith("a multiple of 3: 3, 6, 9, 12")


def test_an_unknown_arm_in_the_ratio_is_refused():
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(_with({**SECTION, "ratio": {"immediate": 1, "placebo": 1}}))
    (problem,) = caught.value.problems
    assert (problem.column, problem.value, problem.reason, problem.allowed) == (
        "randomisation.ratio.placebo", "placebo", "is not an arm of the protocol", "immediate, delayed")


@pytest.mark.parametrize(("change", "expected"), [
    ({"method": "minimisation"}, ("randomisation.method", "minimisation", "is not one of the choices")),
    ({"method": None}, ("randomisation.method", None, "is required")),
    ({"block_sizes": []}, ("randomisation.block_sizes", None, "is required")),
    ({"block_sizes": [4, 4]}, ("randomisation.block_sizes[1]", 4, "appears twice")),
    ({"block_sizes": [0]}, ("randomisation.block_sizes[0]", 0, "is not a block size")),
    ({"ratio": {"immediate": 0}}, ("randomisation.ratio.immediate", 0, "is not a weight")),
    ({"ratio": {"immediate": 1.5}}, ("randomisation.ratio.immediate", 1.5, "is not a weight")),
    ({"list_length": 0}, ("randomisation.list_length", 0, "is not a list length")),
    ({"list_length": 10_001}, ("randomisation.list_length", 10_001, "is not a list length")),
    ({"strata": ["email"]}, ("randomisation.strata[0]", "email",
                             "identifies a person: the list is not stratified by identifiers")),
    ({"strata": ["arm"]}, ("randomisation.strata[0]", "arm", "is the allocation itself")),
    ({"strata": ["site", "site"]}, ("randomisation.strata[1]", "site", "appears twice")),
    ({"strata": ["Site"]}, ("randomisation.strata[0]", "Site", "is not a covariate name")),
    ({"strata": [{"sex": [True, "m"]}]}, ("randomisation.strata[0].sex[0]", True, "is not a stratum value")),
    ({"strata": [{"site": ["a=b"]}]}, ("randomisation.strata[0].site[0]", "a=b", "is not a stratum value")),
    ({"strata": [{"site": ["a", "a"]}]}, ("randomisation.strata[0].site[1]", "a", "appears twice")),
    ({"strata": {"site": []}}, ("randomisation.strata.site", [], "is not a list of values")),
    ({"colour": "red"}, ("randomisation.colour", None, "is not a key of this section")),
])
def test_each_problem_names_its_key_value_and_reason(change, expected):
    assert _problems({**SECTION, **change}) == [expected]


def test_too_many_declared_strata_are_refused():
    strata = {f"factor{i}": [f"v{j}" for j in range(4)] for i in range(6)}   # 4^6 = 4,096 > 1,000
    assert _problems({**SECTION, "strata": strata}) == [("randomisation.strata", strata, "makes 4,096 strata")]


# -- the list ------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_list_and_another_seed_another():
    spec = _spec(strata=(StratumFactor("site", ("a", "b")),))
    first, again, other = (allocation_list(spec, seed) for seed in (12345, 12345, 12346))
    assert first == again and first.to_dict() == again.to_dict()
    assert all(a.arms != b.arms for a, b in zip(first.strata, other.strata, strict=True))


def test_the_list_does_not_depend_on_python_hash_randomisation():
    code = ("import json; from alliance.protocol import RandomisationSpec, StratumFactor, allocation_list; "
            "spec = RandomisationSpec(ratio={'a': 1, 'b': 1}, block_sizes=(2, 4), "
            "strata=(StratumFactor('site', ('x', 'y')),), list_length=20); "
            "print(json.dumps(allocation_list(spec, 99).to_dict()))")
    outputs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": hash_seed}).stdout
               for hash_seed in ("1", "2")]
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["strata"][0]["key"] == "site=x"


@pytest.mark.parametrize(("ratio", "block_sizes"), [
    ({"immediate": 1, "delayed": 1}, (4, 6)),
    # 2:1 — a block of 3 holds 2 immediate and 1 delayed, a block of 6 holds 4 and 2
    ({"immediate": 2, "delayed": 1}, (3, 6)),
])
def test_every_block_of_every_stratum_ends_in_the_exact_ratio(ratio, block_sizes):
    spec = _spec(ratio=ratio, block_sizes=block_sizes, list_length=300,
                 strata=(StratumFactor("site", ("a", "b", "c")), StratumFactor("sex", ("f", "m"))))
    allocations = allocation_list(spec, seed=2024)
    assert len(allocations.strata) == 6
    total = sum(ratio.values())
    for stratum in allocations.strata:
        assert sum(stratum.block_sizes) == len(stratum) and 300 <= len(stratum) < 300 + max(block_sizes)
        end = 0
        for size in stratum.block_sizes:
            block = Counter(stratum.arms[end:end + size])
            assert block == {arm: size // total * weight for arm, weight in ratio.items()}
            end += size
            counts = Counter(stratum.arms[:end])   # and so cumulatively, at the end of every block
            assert {arm: counts[arm] * total for arm in ratio} == {arm: end * w for arm, w in ratio.items()}


def test_block_sizes_vary_and_are_drawn_from_the_list():
    stratum = allocation_list(_spec(block_sizes=(2, 4, 8), list_length=2000), seed=5).stratum("all")
    sizes = Counter(stratum.block_sizes)
    assert set(sizes) == {2, 4, 8}
    # drawn uniformly: each size about a third of the ~430 blocks (binomial SE ≈ 9.8; 4 SE allowed)
    blocks = len(stratum.block_sizes)
    assert all(abs(count - blocks / 3) < 4 * math.sqrt(blocks * 2 / 9) for count in sizes.values())


def test_strata_are_independent_and_named_by_their_values_only():
    spec = _spec(strata=(StratumFactor("site"),), list_length=40)
    ab = allocation_list(spec, 7, {"site": ["a", "b"]})
    ac = allocation_list(spec, 7, {"site": ["c", "a"]})
    # each stratum has its own stream: the lists differ, and site a's list is the same whoever else is listed
    assert ab.stratum("site=a").arms != ab.stratum("site=b").arms
    assert ab.stratum("site=a") == ac.stratum("site=a")
    assert [s.key for s in ac.strata] == ["site=c", "site=a"]


def test_a_longer_list_extends_each_stratum_without_changing_it():
    short = allocation_list(_spec(list_length=20), seed=3).stratum("all")
    long = allocation_list(_spec(list_length=200), seed=3).stratum("all")
    assert long.arms[:len(short)] == short.arms
    assert long.block_sizes[:len(short.block_sizes)] == short.block_sizes


def test_the_first_allocation_of_a_block_is_not_predictable():
    # Ratio 2:1, blocks of 3 or 6: the first arm of a block is `immediate` with probability 2/3.
    # Over n ≥ 2000 blocks its share must be within 3 SE = 3·√(p(1 − p)/n) ≈ 0.032 of 2/3.
    spec = _spec(ratio={"immediate": 2, "delayed": 1}, block_sizes=(3, 6), list_length=2000,
                 strata=(StratumFactor("site", tuple("abcde")),))
    firsts = []
    for stratum in allocation_list(spec, seed=31337).strata:
        start = 0
        for size in stratum.block_sizes:
            firsts.append(stratum.arms[start])
            start += size
    n = len(firsts)
    assert n >= 2000
    for arm, share in (("immediate", 2 / 3), ("delayed", 1 / 3)):
        se = math.sqrt(share * (1 - share) / n)
        assert abs(firsts.count(arm) / n - share) < 3 * se, (arm, firsts.count(arm), n)


def test_factor_values_come_from_the_protocol_or_the_caller():
    spec = _spec(strata=(StratumFactor("site"), StratumFactor("sex", ("f", "m"))), list_length=4)
    allocations = allocation_list(spec, 1, {"site": ["north", "south"]})
    assert [s.key for s in allocations.strata] == ["sex=f;site=north", "sex=m;site=north",
                                                   "sex=f;site=south", "sex=m;site=south"]
    assert allocations.strata[1].values == {"site": "north", "sex": "m"}
    with pytest.raises(RandomisationError, match="factor site has no values"):
        allocation_list(spec, 1)
    with pytest.raises(RandomisationError, match="value 'x' is not among the protocol's values; allowed: f, m"):
        allocation_list(spec, 1, {"site": ["north"], "sex": ["x"]})
    with pytest.raises(RandomisationError, match="names age, which the randomisation does not stratify by"):
        allocation_list(spec, 1, {"site": ["north"], "age": ["40"]})
    with pytest.raises(RandomisationError, match="seed -1 is not a whole number"):
        allocation_list(spec, -1, {"site": ["north"]})


def test_stratum_key_is_stable():
    assert stratum_key({"site": "b", "sex": "f"}) == stratum_key({"sex": "f", "site": "b"}) == "sex=f;site=b"
    assert stratum_key({"site": 3}) == "site=3"
    assert stratum_key({}) == "all"
    with pytest.raises(RandomisationError, match="without = or ;"):
        stratum_key({"site": "a;b"})


# -- allocating ----------------------------------------------------------------------------------


def test_allocate_gives_the_next_entry_with_its_sequence_and_block():
    spec = _spec(block_sizes=(4, 6), strata=(StratumFactor("site", ("a", "b")),), list_length=30)
    allocations = allocation_list(spec, seed=11)
    stratum = allocations.stratum("site=b")
    got = [allocate(allocations, {"site": "b"}, n) for n in range(len(stratum))]
    assert tuple(a.arm for a in got) == stratum.arms
    assert [a.sequence for a in got] == list(range(1, len(stratum) + 1))
    # block numbers and positions follow the block sizes: e.g. sizes (4, 6, …) → blocks 1,1,1,1,2,2,…
    expected = [(block, size, position) for block, size in enumerate(stratum.block_sizes, start=1)
                for position in range(1, size + 1)]
    assert [(a.block, a.block_size, a.position_in_block) for a in got] == expected
    assert got[0].to_dict() == {"stratum": "site=b", "sequence": 1, "block": 1,
                                "block_size": stratum.block_sizes[0], "position_in_block": 1, "arm": stratum.arms[0]}


def test_an_exhausted_list_is_a_clear_error():
    allocations = allocation_list(_spec(block_sizes=(4,), list_length=8), seed=2)
    assert allocate(allocations, {}, 7).sequence == 8
    with pytest.raises(ListExhaustedError, match="stratum all: all 8 allocations of its list are used "
                                                 r"\(8 participants allocated\); .*larger list_length"):
        allocate(allocations, {}, 8)


def test_an_unknown_stratum_is_a_clear_error():
    spec = _spec(strata=(StratumFactor("site", ("a", "b")), StratumFactor("sex", ("f", "m"))), list_length=4)
    allocations = allocation_list(spec, seed=2)
    with pytest.raises(UnknownStratumError, match=r"no stratum sex=f;site=c: site 'c' \(allowed: a, b\)"):
        allocate(allocations, {"site": "c", "sex": "f"}, 0)
    with pytest.raises(UnknownStratumError, match="lacks sex; the list is stratified by site, sex"):
        allocate(allocations, {"site": "a"}, 0)
    with pytest.raises(UnknownStratumError, match="has age, not a factor of the list"):
        allocate(allocations, {"site": "a", "sex": "f", "age": 40}, 0)
    with pytest.raises(RandomisationError, match="already_allocated -1 is not a whole number"):
        allocate(allocations, {"site": "a", "sex": "f"}, -1)


def test_the_list_as_a_table():
    spec = _spec(strata=(StratumFactor("site", ("a",)),), block_sizes=(2,), list_length=4)
    frame = allocation_list(spec, seed=8).to_frame()
    assert list(frame.columns) == ["stratum", "site", "sequence", "block", "block_size", "position_in_block", "arm"]
    assert frame["block"].tolist() == [1, 1, 2, 2] and set(frame["site"]) == {"a"}
