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
