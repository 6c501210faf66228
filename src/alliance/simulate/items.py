"""Item answers that add up to a given scale score.

A synthetic trial is calibrated at the level of scale scores, but the data it writes are item
answers, so that everything downstream (validation, the missing-item rules, reliability, REDCap
export) runs on the same kind of data a real trial has. For each administration we spread the
target score over the items — with subscale and item deviations, so subscales differ and items
are not all equal — round to the items' allowed answers and then move single answer units until
the items add up to the target (rounded to the nearest reachable value).
"""

from __future__ import annotations

import numpy as np

from alliance.instruments import Instrument, Scale


def primary_scale(instrument: Instrument) -> Scale:
    """The scale a synthetic trial calibrates: the first scale that uses every item.

    Parameters
    ----------
    instrument : Instrument

    Returns
    -------
    Scale
        For example ``wai_sr.total``, ``meq30.total``, ``ebi.score``.
    """
    every = set(instrument.item_ids)
    for scale in instrument.scales:
        if set(scale.items) == every:
            return scale
    return instrument.scales[0]


def item_sd_for_alpha(instrument: Instrument, scores: np.ndarray, alpha: float, subscale_sd: float = 0.07) -> float:
    """The item deviation SD that gives the primary scale a Cronbach's alpha of ``alpha``.

    Parameters
    ----------
    instrument : Instrument
    scores : ndarray
        The target primary-scale scores of one administration (their spread is the true-score
        variance the items share).
    alpha : float
        The published alpha to reproduce (the scenario's ``reliability:``).
    subscale_sd : float
        The subscale deviation SD that :func:`items_for_scores` adds as well.

    Returns
    -------
    float
        As a fraction of the item range; 0 when the subscale deviations and rounding alone already
        bring alpha below the target, or the scores have no spread.

    Notes
    -----
    Item ``i`` is ``t + d_i - mean(d)`` (in fractions of the item range) with ``d_i`` its
    subscale's deviation ``s`` plus its own ``e_i``; the total is ``k t``, so
    ``var(total) = k^2 var(t)`` and Cronbach's alpha [1]_ is
    ``k/(k-1) (1 - sum var(x_i) / (k^2 var(t)))`` with
    ``sum var(x_i) = k var(t) + (k-1) var(e) + var(s) (k_s - sum k_g^2 / k)`` (``k_s`` items in
    subscales of sizes ``k_g``). That closed form starts a bisection on the SD: clipping at the
    ends of the range, rounding to the answers and the adjustment of the items to the target
    total all shrink the deviations actually drawn, so the SD is tuned on a calibration sample
    (the scores repeated to at least 400 rows, drawn with a fixed seed, so the trial's own random
    stream is not touched) until its alpha is within .005 of the target.
    ``tests/simulate/test_reliability_calibration.py`` checks it on trials it was not tuned on.

    References
    ----------
    .. [1] Cronbach LJ (1951). Coefficient alpha and the internal structure of tests.
       Psychometrika 16(3):297-334.
    """
    scale = primary_scale(instrument)
    k = len(scale.items)
    scores = np.asarray(scores, dtype=float)
    scores = scores[np.isfinite(scores)]
    position = (scores - scale.range[0]) / (scale.range[1] - scale.range[0])
    if k < 2 or len(position) < 2 or float(np.var(position, ddof=1)) <= 0:
        return 0.0
    var_t = float(np.var(position, ddof=1))
    index = {item_id: j for j, item_id in enumerate(instrument.item_ids)}
    assigned = np.zeros(len(instrument.items), dtype=bool)
    sizes = []
    for sub in instrument.scales:
        if sub is scale:
            continue
        columns = [index[i] for i in sub.items if not assigned[index[i]]]
        if columns:
            assigned[columns] = True
            sizes.append(len(columns))
    k_sub, sum_sq = sum(sizes), sum(g * g for g in sizes)
    wanted = k * k * var_t * (1.0 - alpha * (k - 1) / k)
    var_e = (wanted - k * var_t - subscale_sd ** 2 * (k_sub - sum_sq / k)) / (k - 1)
    start = float(np.sqrt(var_e)) if var_e > 0 else 0.0

    sample = np.resize(scores, max(400, len(scores)))
    members = [index[i] for i in scale.items]
    reverse = np.array([instrument.items[j].reverse for j in members])
    low = np.array([instrument.items[j].min for j in members])
    high = np.array([instrument.items[j].max for j in members])

    def sample_alpha(sd: float) -> float:
        raw = items_for_scores(instrument, sample, np.random.default_rng(20240301), subscale_sd, sd)[:, members]
        keyed = np.where(reverse, low + high - raw, raw)
        total = keyed.sum(axis=1).var(ddof=1)
        return float(k / (k - 1) * (1 - keyed.var(axis=0, ddof=1).sum() / total)) if total > 0 else 0.0

    if sample_alpha(0.0) <= alpha:
        return 0.0
    lo, hi = 0.0, max(2.0 * start, 0.2)
    while sample_alpha(hi) > alpha and hi < 4.0:
        lo, hi = hi, 2.0 * hi
    for _ in range(30):
        middle = (lo + hi) / 2.0
        value = sample_alpha(middle)
        if abs(value - alpha) < 0.005:
            return middle
        lo, hi = (middle, hi) if value > alpha else (lo, middle)
    return (lo + hi) / 2.0


def items_for_scores(instrument: Instrument, scores: np.ndarray, rng: np.random.Generator,
                     subscale_sd: float = 0.07, item_sd: float = 0.10) -> np.ndarray:
    """Draw item answers whose primary-scale score equals the given scores.

    Parameters
    ----------
    instrument : Instrument
        The definition; item ranges, steps and reverse keying come from it.
    scores : ndarray
        Target primary-scale scores, one per administration, inside the scale's range.
    rng : numpy.random.Generator
    subscale_sd, item_sd : float
        SDs of the subscale and item deviations, as fractions of the item range.

    Returns
    -------
    ndarray
        (n, n_items) raw answers (reverse-keyed items already reversed back), on each item's
        allowed values. For sum and mean scales of whole-number items the keyed answers add up to
        the target rounded to the nearest reachable total.
    """
    scale = primary_scale(instrument)
    items = instrument.items
    n, k = len(scores), len(items)
    low = np.array([i.min for i in items])
    width = np.array([i.max - i.min for i in items])
    position = (np.asarray(scores, dtype=float) - scale.range[0]) / (scale.range[1] - scale.range[0])

    deviation = np.zeros((n, k))
    assigned = np.zeros(k, dtype=bool)
    index = {item_id: j for j, item_id in enumerate(instrument.item_ids)}
    for sub in instrument.scales:
        if sub is scale:
            continue
        columns = [index[i] for i in sub.items if not assigned[index[i]]]
        if columns:
            deviation[:, columns] += rng.normal(0.0, subscale_sd, size=(n, 1))
            assigned[columns] = True
    deviation += rng.normal(0.0, item_sd, size=(n, k))
    deviation -= deviation.mean(axis=1, keepdims=True)  # deviations move items, not the score
    keyed = low + width * np.clip(position[:, None] + deviation, 0.0, 1.0)

    if scale.method in ("sum", "mean"):
        members = np.array([index[i] for i in scale.items])
        target = position * width[members].sum() + low[members].sum()  # in summed answer units
        keyed[:, members] = _match_sum(keyed[:, members], target, low[members], low[members] + width[members])
    steps = [i.step for i in items]
    for j, step in enumerate(steps):
        if step is None:
            keyed[:, j] = np.round(keyed[:, j], 1)
    if scale.method in ("sum", "mean"):
        whole = np.array([steps[j] == 1 for j in members])
        if whole.all():
            keyed[:, members] = _round_to_sum(keyed[:, members], np.round(target), low[members],
                                              low[members] + width[members])
    for j, step in enumerate(steps):
        if step is not None:
            keyed[:, j] = low[j] + np.clip(np.round((keyed[:, j] - low[j]) / step) * step, 0, width[j])
    raw = keyed.copy()
    for j, item in enumerate(items):
        if item.reverse:
            raw[:, j] = item.min + item.max - keyed[:, j]
    return raw


def _match_sum(x: np.ndarray, target: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Shift items equally (within their bounds) until each row adds up to its target."""
    for _ in range(20):
        gap = target - x.sum(axis=1)
        room = np.where(gap[:, None] > 0, x < high, x > low)
        movable = room.sum(axis=1)
        if np.all(np.abs(gap) < 1e-9) or not movable.any():
            break
        shift = np.where(movable > 0, gap / np.maximum(movable, 1), 0.0)
        x = np.clip(x + np.where(room, shift[:, None], 0.0), low, high)
    return x


def _round_to_sum(x: np.ndarray, target: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Round to whole numbers so each row adds up to ``target`` (largest-remainder method)."""
    floor = np.floor(x + 1e-9)
    remainder = x - floor
    short = (target - floor.sum(axis=1)).astype(int)
    # Add one unit to the items with the largest remainders that are still below their maximum.
    order = np.argsort(-np.where(floor < high, remainder, -np.inf), axis=1, kind="stable")
    rank = np.empty_like(order)
    rows = np.arange(x.shape[0])[:, None]
    rank[rows, order] = np.arange(x.shape[1])[None, :]
    result = floor + ((rank < short[:, None]) & (floor < high))
    # Rows still off (targets at the edges) take or give single units where room remains.
    for _ in range(x.shape[1]):
        gap = target - result.sum(axis=1)
        if not np.any(gap):
            break
        up = (gap[:, None] > 0) & (result < high)
        down = (gap[:, None] < 0) & (result > low)
        first_up = up & (np.cumsum(up, axis=1) == 1)
        first_down = down & (np.cumsum(down, axis=1) == 1)
        result = result + first_up - first_down
    return result
