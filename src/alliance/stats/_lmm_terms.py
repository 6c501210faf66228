"""Random-effects terms of an lme4 formula, with lme4's meaning and names.

A right-hand side is split at its top-level ``+`` into fixed-effect chunks and random-effect terms
``(expr | g)`` / ``(expr || g)``. The grouping side ``g`` may be

- a column: ``participant``;
- an interaction of columns: ``site:participant`` (one level per observed combination);
- a nesting: ``site/participant``, which lme4 expands to ``(expr | site) + (expr | participant:site)``
  — lme4 names the inner term ``participant:site`` (``findbars`` writes ``b:a`` for ``a/b``);
- a multiple membership: ``mm(facilitator_1, facilitator_2)``, each row's effect the mean of its
  members' effects (weight 1/k over its k non-missing members), or with explicit weights
  ``mm(f1, f2, weights = cbind(w1, w2))`` (the syntax of brms' ``mm``; Browne et al. 2001).
  lme4 has no such term; its users build it by editing ``Zt`` (``lFormula`` → ``mkLmerDevfun``).

``(x || g)`` is lme4's uncorrelated form: one term per column of ``x``'s model matrix (the
intercept its own term), all with group ``g``. lme4 then orders the terms by decreasing number of
levels (``mkReTrms``, stable for ties), which fixes the order of θ and of ``VarCorr``; the same is
done here by the caller once levels are known.

References
----------
Bates D, Mächler M, Bolker B, Walker S (2015). Fitting Linear Mixed-Effects Models Using lme4.
J Stat Softw 67(1). Browne WJ, Goldstein H, Rasbash J (2001). Multiple membership multiple
classification (MMMC) models. Statistical Modelling 1(2):103-124. Bürkner P-C (2017). brms: An R
Package for Bayesian Multilevel Models Using Stan. J Stat Softw 80(1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SUPPORTED_RANDOM = (
    "supported random-effects terms: (expr | g) and (expr || g) where g is a column, a:b (an "
    "interaction of columns), a/b (b nested in a) or mm(g1, g2, ...) (multiple membership, optionally "
    "mm(g1, g2, weights = cbind(w1, w2))); expr is 1, 0 + x, x, 1 + x + z, ..."
)
_NAME = r"[A-Za-z_.][A-Za-z0-9_.]*"


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term after expansion.

    Attributes
    ----------
    expr : str
        The left of ``|`` (a model formula right-hand side, e.g. ``1 + week``).
    factors : tuple of str
        Columns whose interaction is the grouping factor (one for a plain column); for a
        multiple-membership term, the member columns.
    membership : bool
        Multiple membership: each row belongs to several levels (``factors`` are the members).
    weights : tuple of str
        For a weighted membership, the weight columns (one per member).
    name : str
        The group name lme4 prints (``Subject``, ``cask:batch``; ``mm(f1, f2)`` here).
    """

    expr: str
    factors: tuple[str, ...]
    membership: bool = False
    weights: tuple[str, ...] = ()
    name: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """Data columns of the grouping side."""
        return self.factors + self.weights


def top_level_chunks(rhs: str) -> list[str]:
    """Split a right-hand side at '+' signs outside parentheses."""
    chunks, depth, current = [], 0, []
    for char in rhs:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced parentheses in formula right-hand side {rhs!r}")
        if char == "+" and depth == 0:
            chunks.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise ValueError(f"unbalanced parentheses in formula right-hand side {rhs!r}")
    chunks.append("".join(current).strip())
    return chunks


def _split_bar(inner: str, chunk: str) -> tuple[str, str, bool]:
    depth = 0
    for i, char in enumerate(inner):
        depth += char == "("
        depth -= char == ")"
        if char == "|" and depth == 0:
            double = inner[i + 1:i + 2] == "|"
            left, right = inner[:i], inner[i + 2 if double else i + 1:]
            if "|" in right:
                break
            return left.strip(), right.strip(), double
    raise ValueError(f"random-effects term {chunk!r} must be (expr | g) or (expr || g). {SUPPORTED_RANDOM}")


def _membership(group: str, chunk: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    inner = group[3:-1]
    weights: tuple[str, ...] = ()
    found = re.search(r",\s*weights\s*=\s*cbind\((?P<w>[^()]*)\)\s*$", inner)
    if found:
        weights = tuple(w.strip() for w in found["w"].split(","))
        inner = inner[:found.start()]
    members = tuple(m.strip() for m in inner.split(","))
    if len(members) < 2 or not all(re.fullmatch(_NAME, m) for m in members + weights):
        raise ValueError(f"multiple-membership term {chunk!r} needs two or more member columns, e.g. "
                         f"mm(facilitator_1, facilitator_2). {SUPPORTED_RANDOM}")
    if weights and len(weights) != len(members):
        raise ValueError(f"multiple-membership term {chunk!r} has {len(members)} members and {len(weights)} "
                         f"weight columns; give one weight column per member. {SUPPORTED_RANDOM}")
    return members, weights


def split_random(rhs: str, formula: str) -> tuple[list[str], list[RandomTerm]]:
    """The fixed-effect chunks and the expanded random-effect terms of a right-hand side.

    Raises
    ------
    ValueError
        Naming the term, for anything outside :data:`SUPPORTED_RANDOM`.
    """
    fixed, terms = [], []
    for chunk in top_level_chunks(rhs):
        if not chunk:
            raise ValueError(f"empty term in formula {formula!r}")
        if "|" not in chunk:
            fixed.append(chunk)
            continue
        if not (chunk.startswith("(") and chunk.endswith(")")):
            raise ValueError(f"random-effects term {chunk!r} in {formula!r} must be written in parentheses "
                             f"as a separate '+ (expr | g)' term. {SUPPORTED_RANDOM}")
        expr, group, uncorrelated = _split_bar(chunk[1:-1], chunk)
        if not expr:
            raise ValueError(f"random-effects term {chunk!r} has nothing left of '|'. {SUPPORTED_RANDOM}")
        groups: list[RandomTerm] = []
        if group.startswith("mm(") and group.endswith(")"):
            members, weights = _membership(group, chunk)
            groups.append(RandomTerm(expr, members, membership=True, weights=weights,
                                     name=f"mm({', '.join(members)})"))
        elif re.fullmatch(rf"{_NAME}(\s*/\s*{_NAME})+", group):
            # a/b/c → a, b:a, c:b:a (lme4's findbars expansion and names)
            parts = [p.strip() for p in group.split("/")]
            for depth in range(1, len(parts) + 1):
                inner = tuple(reversed(parts[:depth]))
                groups.append(RandomTerm(expr, inner, name=":".join(inner)))
        elif re.fullmatch(rf"{_NAME}(\s*:\s*{_NAME})*", group):
            factors = tuple(p.strip() for p in group.split(":"))
            groups.append(RandomTerm(expr, factors, name=":".join(factors)))
        else:
            raise ValueError(f"grouping {group!r} of {chunk!r} in {formula!r} is not supported. {SUPPORTED_RANDOM}")
        for term in groups:
            terms.extend(_uncorrelated(term) if uncorrelated else [term])
    if not terms:
        raise ValueError(f"formula {formula!r} has no random-effects term such as (1 | g). {SUPPORTED_RANDOM}")
    return fixed, terms


def _uncorrelated(term: RandomTerm) -> list[RandomTerm]:
    """``(1 + x + z || g)`` → ``(1 | g) + (0 + x | g) + (0 + z | g)`` (lme4's ``expandDoubleVerts``)."""
    chunks = [c for c in top_level_chunks(term.expr) if c]
    intercept = not any(c in ("0", "-1") for c in chunks)
    slopes = [c for c in chunks if c not in ("0", "1", "-1")]
    out = [RandomTerm("1", term.factors, term.membership, term.weights, term.name)] if intercept else []
    out += [RandomTerm(f"0 + {s}", term.factors, term.membership, term.weights, term.name) for s in slopes]
    return out
