"""Reliable and clinically significant change of one participant's score (Jacobson & Truax 1991).

Two questions a clinician asks of a participant's change from baseline, answered per participant:

- :func:`reliable_change` — is the change larger than measurement error alone would make it? The
  reliable change index RCI = (post − pre) / S_diff, with S_diff = SD · √2 · √(1 − r_xx), classifies
  each change as a reliable improvement, no reliable change or a reliable deterioration.
- :func:`clinical_significance` — where does "functional" begin? The cut-offs a, b and c between the
  dysfunctional and the functional population, and the one Jacobson & Truax recommend;
  :func:`classify_change` then gives their four categories (recovered, improved, unchanged,
  deteriorated) from the reliable change and a cut-off.

Why this is written here: reliable change is the product (the per-participant view of a trial that
the report and the monitor show), and no well-kept Python library computes it. On PyPI we found no
package for the RCI or the Jacobson–Truax cut-offs (searched for "reliable change", "Jacobson",
"clinical significance"); pingouin, the statistics library this package imitates, has none. In R
the method is in the ``clinicalsignificance`` and ``JTRCI`` packages. The formulas are a few lines;
the value of this module is the checked inputs, the stated edge rule (strictly greater than z) and
missing data that is never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._inputs import float_vector
from .results import Result

__all__ = [
    "CATEGORIES",
    "CLINICAL_CATEGORIES",
    "ClinicalSignificance",
    "ReliableChange",
    "classify_change",
    "clinical_significance",
    "reliable_change",
]

IMPROVEMENT = "reliable improvement"
NO_CHANGE = "no reliable change"
DETERIORATION = "reliable deterioration"
CATEGORIES = (IMPROVEMENT, NO_CHANGE, DETERIORATION)
CLINICAL_CATEGORIES = ("recovered", "improved", "unchanged", "deteriorated")


@dataclass(frozen=True, eq=False)
class ReliableChange(Result):
    """Result of :func:`reliable_change`.

    Attributes
    ----------
    table : DataFrame
        One row per input pair, in input order: ``pre, post, change`` (post − pre), ``rci`` (NaN
        when pre or post is missing) and ``category`` (one of :data:`CATEGORIES`, ``None`` when pre
        or post is missing).
    sd, reliability : float
        The reference SD and reliability used.
    alpha : float
        Two-sided level of the criterion.
    z : float
        The two-sided normal quantile of ``alpha`` (1.959964 for 0.05).
    se_diff : float
        Standard error of the difference, SD · √2 · √(1 − reliability).
    threshold : float
        z · se_diff: a change must be larger than this, in points, to be reliable.
    lower_is_better : bool
        Whether a decrease is an improvement (symptom scales) or an increase (alliance).
    n : int
        Rows with both pre and post.
    counts : dict
        Category → number of rows (every category present, zeros included).
    """

    table: pd.DataFrame
    sd: float
    reliability: float
    alpha: float
    z: float
    se_diff: float
    threshold: float
    lower_is_better: bool
    n: int
    counts: dict


@dataclass(frozen=True)
class ClinicalSignificance(Result):
    """Result of :func:`clinical_significance`: the Jacobson–Truax cut-offs of one scale.

    Attributes
    ----------
    a : float
        Two SDs beyond the dysfunctional mean, towards function.
    b : float or None
        Two SDs beyond the functional mean, towards dysfunction; ``None`` without functional norms.
    c : float or None
        The point between the two means weighted by their SDs; ``None`` without functional norms.
    recommended : str
        ``"c"`` when both norms are given, ``"a"`` otherwise (Jacobson & Truax 1991).
    cutoff : float
        The value of the recommended cut-off.
    dysfunctional_mean, dysfunctional_sd, functional_mean, functional_sd : float or None
        The norms used.
    lower_is_better : bool
    """

    a: float
    b: float | None
    c: float | None
    recommended: str
    cutoff: float
    dysfunctional_mean: float
    dysfunctional_sd: float
    functional_mean: float | None = None
    functional_sd: float | None = None
    lower_is_better: bool = True


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number; got {value!r}")
    return float(value)


def _check_sd(value, name: str) -> float:
    number = _number(value, name)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number greater than 0; got {value!r}")
    return number


def reliable_change(pre, post, sd: float, reliability: float, alpha: float = 0.05,
                    lower_is_better: bool = True) -> ReliableChange:
    """Jacobson–Truax reliable change index of each participant's change from ``pre`` to ``post``.

    Parameters
    ----------
    pre, post : array-like of float
        The same participants at two timepoints, in the same order; NaN marks a missing score.
    sd : float
        Reference standard deviation of the scale (of a normative or the study's baseline sample);
        finite and greater than 0.
    reliability : float
        Reliability of the scale (Cronbach's alpha or test–retest), 0 ≤ reliability < 1.
    alpha : float, default 0.05
        Two-sided level: a change is reliable when it would arise from measurement error alone with
        probability below ``alpha``. Strictly between 0 and 1.
    lower_is_better : bool, default True
        True for symptom scales (GRID-HAMD: a decrease is an improvement), False for scales where
        higher is better (WAI-SR).

    Returns
    -------
    ReliableChange
        The per-row ``table`` (``pre, post, change, rci, category``) and ``se_diff``, ``z``,
        ``threshold``, ``n``, ``counts``.

    Raises
    ------
    ValueError
        For ``pre`` and ``post`` of different lengths or not numeric, and for ``sd``,
        ``reliability`` or ``alpha`` outside the ranges above (the message names the argument, the
        value and what is allowed).

    Notes
    -----
    .. math::

        S_E = SD\\sqrt{1 - r_{xx}}, \\quad S_{diff} = \\sqrt{2 S_E^2} = SD\\sqrt{2}\\sqrt{1 - r_{xx}}, \\quad
        RCI = \\frac{x_{post} - x_{pre}}{S_{diff}}

    A change is reliable when :math:`|RCI| > z_{1-\\alpha/2}` — strictly: Jacobson & Truax call a
    change reliable when the RCI is "larger than 1.96", so a change exactly at the threshold
    :math:`z\\,S_{diff}` is "no reliable change". The comparison is made in points
    (:math:`|x_{post} - x_{pre}| > z\\,S_{diff}`, the same inequality multiplied by
    :math:`S_{diff}`), so that a change equal to the reported ``threshold`` is classified as the
    rule says and not by the last bit of a division. A reliable change is an improvement when it is
    a decrease and ``lower_is_better`` (an increase otherwise). A row with pre or post missing gets
    ``rci`` NaN and ``category`` ``None``: it is not guessed.

    References
    ----------
    Jacobson NS, Truax P (1991). Clinical significance: a statistical approach to defining
    meaningful change in psychotherapy research. *Journal of Consulting and Clinical Psychology*
    59(1), 12–19. doi:10.1037/0022-006X.59.1.12

    Examples
    --------
    >>> from alliance.stats import reliable_change
    >>> result = reliable_change([24, 22, 20], [10, 20, 28], sd=8, reliability=0.91)
    >>> round(result.se_diff, 4), round(result.threshold, 4)
    (3.3941, 6.6523)
    >>> list(result.table["category"])
    ['reliable improvement', 'no reliable change', 'reliable deterioration']
    """
    before = float_vector(pre, "pre")
    after = float_vector(post, "post")
    if before.shape != after.shape:
        raise ValueError(f"pre and post must have the same length; got {before.size} and {after.size}")
    sd = _check_sd(sd, "sd")
    reliability = _number(reliability, "reliability")
    if not 0.0 <= reliability < 1.0:
        raise ValueError(f"reliability must lie in [0, 1) (0 ≤ reliability < 1, e.g. 0.91); got {reliability!r}")
    alpha = _number(alpha, "alpha")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1 (e.g. 0.05); got {alpha!r}")
    if not isinstance(lower_is_better, bool | np.bool_):
        raise ValueError(f"lower_is_better must be True or False; got {lower_is_better!r}")
    lower_is_better = bool(lower_is_better)

    se_diff = sd * math.sqrt(2.0 * (1.0 - reliability))
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    threshold = z * se_diff
    change = after - before
    known = ~np.isnan(change)
    rci = change / se_diff
    improved = -change if lower_is_better else change
    category = np.full(change.shape, None, dtype=object)
    category[known] = NO_CHANGE
    category[known & (np.abs(change) > threshold) & (improved > 0)] = IMPROVEMENT
    category[known & (np.abs(change) > threshold) & (improved < 0)] = DETERIORATION
    table = pd.DataFrame({"pre": before, "post": after, "change": change, "rci": rci,
                          "category": pd.Series(category, dtype=object)})
    counts = {name: int((category == name).sum()) for name in CATEGORIES}
    return ReliableChange(table=table, sd=sd, reliability=reliability, alpha=alpha, z=z, se_diff=se_diff,
                          threshold=threshold, lower_is_better=lower_is_better, n=int(known.sum()),
                          counts=counts)


def clinical_significance(dysfunctional_mean: float, dysfunctional_sd: float,
                          functional_mean: float | None = None, functional_sd: float | None = None,
                          lower_is_better: bool = True) -> ClinicalSignificance:
    """Jacobson–Truax cut-offs a, b and c between the dysfunctional and the functional population.

    Parameters
    ----------
    dysfunctional_mean, dysfunctional_sd : float
        Mean and SD of the scale in the dysfunctional (clinical) population, e.g. the trial's
        baseline. The SD must be finite and greater than 0.
    functional_mean, functional_sd : float, optional
        Mean and SD in a functional (non-clinical) population; both or neither.
    lower_is_better : bool, default True
        True when function lies below dysfunction (symptom scales).

    Returns
    -------
    ClinicalSignificance
        ``a``, ``b``, ``c`` (``b`` and ``c`` ``None`` without functional norms), ``recommended``
        and its value ``cutoff``.

    Raises
    ------
    ValueError
        For a non-finite mean, an SD that is not a finite number above 0, or only one of the two
        functional norms.

    Notes
    -----
    With lower scores better (the signs flip otherwise):

    .. math::

        a = M_d - 2\\,SD_d, \\quad b = M_f + 2\\,SD_f, \\quad
        c = \\frac{SD_f\\,M_d + SD_d\\,M_f}{SD_f + SD_d}

    a: the score at which a participant has left the range of the dysfunctional population; b: has
    entered the range of the functional population; c: is more likely to belong to the functional
    than to the dysfunctional population. Jacobson & Truax (1991) prefer c when functional
    norms are available; without them only a can be computed, and it is what they use.

    References
    ----------
    Jacobson NS, Truax P (1991). Clinical significance: a statistical approach to defining
    meaningful change in psychotherapy research. *Journal of Consulting and Clinical Psychology*
    59(1), 12–19. doi:10.1037/0022-006X.59.1.12

    Examples
    --------
    >>> from alliance.stats import clinical_significance
    >>> cut = clinical_significance(22.8, 3.9)
    >>> round(cut.a, 1), cut.recommended
    (15.0, 'a')
    >>> cut = clinical_significance(30.0, 6.0, functional_mean=10.0, functional_sd=4.0)
    >>> cut.a, cut.b, cut.c, cut.recommended
    (18.0, 18.0, 18.0, 'c')
    """
    m_d = _number(dysfunctional_mean, "dysfunctional_mean")
    if not math.isfinite(m_d):
        raise ValueError(f"dysfunctional_mean must be a finite number; got {dysfunctional_mean!r}")
    sd_d = _check_sd(dysfunctional_sd, "dysfunctional_sd")
    if (functional_mean is None) != (functional_sd is None):
        raise ValueError("functional_mean and functional_sd must be given together (or neither); got "
                         f"functional_mean={functional_mean!r}, functional_sd={functional_sd!r}")
    toward_function = -1.0 if lower_is_better else 1.0
    a = m_d + toward_function * 2.0 * sd_d
    b = c = m_f = sd_f = None
    if functional_mean is not None:
        m_f = _number(functional_mean, "functional_mean")
        if not math.isfinite(m_f):
            raise ValueError(f"functional_mean must be a finite number; got {functional_mean!r}")
        sd_f = _check_sd(functional_sd, "functional_sd")
        b = m_f - toward_function * 2.0 * sd_f
        c = (sd_f * m_d + sd_d * m_f) / (sd_f + sd_d)
    recommended = "c" if c is not None else "a"
    return ClinicalSignificance(a=a, b=b, c=c, recommended=recommended, cutoff=c if c is not None else a,
                                dysfunctional_mean=m_d, dysfunctional_sd=sd_d, functional_mean=m_f,
                                functional_sd=sd_f, lower_is_better=bool(lower_is_better))


def classify_change(change: ReliableChange, cutoff: float) -> pd.Series:
    """Jacobson & Truax's four categories of each row of a :func:`reliable_change` result.

    Parameters
    ----------
    change : ReliableChange
    cutoff : float
        The cut-off of clinical significance (e.g. ``clinical_significance(...).cutoff``).

    Returns
    -------
    Series
        Indexed as ``change.table``: ``"recovered"`` (a reliable improvement that ends beyond the
        cut-off, on the functional side), ``"improved"`` (a reliable improvement that does not),
        ``"unchanged"`` (no reliable change), ``"deteriorated"`` (a reliable deterioration), and
        ``None`` where pre or post is missing.

    Notes
    -----
    Jacobson & Truax (1991) call "recovered" those who passed both criteria, reliable change
    and the cut-off. Beyond the cut-off is strict: with lower scores better, post < cutoff (post >
    cutoff otherwise); a post score exactly at the cut-off has not crossed it.

    References
    ----------
    Jacobson NS, Truax P (1991). *Journal of Consulting and Clinical Psychology* 59(1), 12–19.

    Examples
    --------
    >>> from alliance.stats import classify_change, reliable_change
    >>> change = reliable_change([24, 24, 20, 20], [10, 17, 18, 28], sd=8, reliability=0.91)
    >>> list(classify_change(change, cutoff=15.0))
    ['recovered', 'improved', 'unchanged', 'deteriorated']
    """
    if not isinstance(change, ReliableChange):
        raise ValueError(f"change must be the result of reliable_change; got {type(change).__name__}")
    cut = _number(cutoff, "cutoff")
    if not math.isfinite(cut):
        raise ValueError(f"cutoff must be a finite number; got {cutoff!r}")
    post = change.table["post"].to_numpy(dtype=float)
    functional = post < cut if change.lower_is_better else post > cut
    names = {IMPROVEMENT: "improved", NO_CHANGE: "unchanged", DETERIORATION: "deteriorated"}
    out = []
    for category, beyond in zip(change.table["category"], functional, strict=True):
        if category is None or category not in names:
            out.append(None)
        elif category == IMPROVEMENT and beyond:
            out.append("recovered")
        else:
            out.append(names[category])
    return pd.Series(out, index=change.table.index, dtype=object, name="clinical_category")
