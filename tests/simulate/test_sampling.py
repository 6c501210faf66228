"""What a trial of this size gives: intervals over simulated trials, centred on the population value."""

from __future__ import annotations

import math

from alliance.protocol import default_protocol
from alliance.simulate.sampling import published_findings, sampling_intervals


def test_published_findings_are_the_abstracts():
    findings = published_findings()
    assert len(findings) == 12
    primary = next(f for f in findings if (f.x, f.y) == ("wai_sr.total@prep", "grid_hamd17.total@week4"))
    assert (primary.value, primary.p) == (-0.65, ".002")


def test_intervals_are_centred_on_the_population_and_reproducible():
    protocol = default_protocol()
    first = sampling_intervals(protocol, n=24, attrition=0.1, trials=2000, seed=5)
    again = sampling_intervals(protocol, n=24, attrition=0.1, trials=2000, seed=5)
    assert first == again
    for finding in first.findings:
        assert finding["low"] < finding["median"] < finding["high"]
        assert finding["computed"] == 2000
        if finding["statistic"] == "r":
            # the median of r over 2,000 trials: within Monte-Carlo error (SE of a median ≈ 1.25 SE(r)/√2000)
            # of the population r, allowing for the small negative bias of r at n ≈ 22
            se = (1 - finding["population"] ** 2) / math.sqrt(21) * 1.25 / math.sqrt(2000)
            assert abs(finding["median"] - finding["population"]) < 4 * se + 0.02, finding
        # the generator's population value is the published value it is calibrated to
        assert abs(finding["population"] - finding["published"]) < 0.005, finding


def test_larger_trials_give_narrower_intervals():
    protocol = default_protocol()
    small = sampling_intervals(protocol, n=24, trials=1000, seed=1)
    large = sampling_intervals(protocol, n=200, trials=1000, seed=1)
    for a, b in zip(small.findings, large.findings, strict=True):
        assert (b["high"] - b["low"]) < 0.5 * (a["high"] - a["low"])
        assert b["share_significant"] >= a["share_significant"]
