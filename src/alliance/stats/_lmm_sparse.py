"""Linear mixed models with any random-effects terms: lme4's penalized least squares on sparse matrices.

:func:`alliance.stats.mixed.mixedlm` fits models with one simple random-effects term by per-group
batched algebra (:mod:`alliance.stats._lmm_deviance`); everything else — several terms, crossed
``(1|participant) + (1|facilitator)``, nested ``(1|site/participant)``, uncorrelated ``(x || g)``
and multiple membership ``(1 | mm(f1, f2))`` — is fitted here, by the formulation of lme4 (Bates
et al. 2015, section 3): with Z the random-effects model matrix (n × q, sparse), Λθ the relative
covariance factor (block diagonal, one block ``I_m ⊗ T_k`` per term), and the sparse Cholesky
factor L of ``Λᵀ Zᵀ Z Λ + I`` (with a fill-reducing permutation), the profiled deviance is

    d(θ) = log|L|² [+ log|R_X|²] + n′ (1 + log(2π r²(θ) / n′)),

where R_X is the Cholesky factor of ``XᵀX − R_ZXᵀ R_ZX``, ``R_ZX = L⁻¹ P Λᵀ Zᵀ X`` and r² the
penalized residual sum of squares; n′ = n − p for REML (the bracketed term), n for ML.

Why our own code rather than statsmodels: statsmodels' MixedLM fits one grouping factor (crossed
terms only through variance components of one "group", without sparse algebra) and has no
multiple membership, Satterthwaite or Kenward–Roger; lme4's answers to its printed digits are
the product here. The sparse Cholesky is CHOLMOD, as in lme4, through cvxopt (a wheel on PyPI;
scikit-sparse has none). Because Λ is linear in θ, ``ΛᵀZᵀZΛ`` is a fixed sparse pattern whose
values are a quadratic form in θ: they are precomputed per pair of θ entries, so each deviance
evaluation is one small dense product plus a numeric refactorization on a symbolic analysis
done once. Small problems (q ≤ 400) use a dense Cholesky, which is faster there.

θ is optimised by L-BFGS-B (diagonal entries of each T ≥ 0) with central-difference gradients,
then polished by Newton steps on a Richardson-extrapolated Hessian. Satterthwaite df follow
lmerTest: the Hessian of the deviance in varpar = (θ, σ) and the Jacobian of vcov(β), both by
Richardson extrapolation as numDeriv computes them in lmerTest.

References
----------
Bates D, Mächler M, Bolker B, Walker S (2015). Fitting Linear Mixed-Effects Models Using lme4.
J Stat Softw 67(1):1-48. Kuznetsova A, Brockhoff PB, Christensen RHB (2017). lmerTest Package.
J Stat Softw 82(13):1-26. Gilbert P, Varadhan R (2019). numDeriv: Accurate Numerical
Derivatives (R package; method "Richardson").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as la
import scipy.sparse as sp
from scipy import optimize

from ._lmm_terms import RandomTerm, split_random

DENSE_MAX_Q = 400
# Conditional SDs need a q × q dense solve: up to 4,000 random effects (128 MB); beyond, NaN.
CONDITIONAL_VARIANCE_MAX_Q = 4000


# -- model frame ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TermBlock:
    """One random-effects term in the order lme4 keeps (decreasing number of levels)."""

    term: RandomTerm
    names: tuple[str, ...]      # R names of the term's columns, e.g. ("(Intercept)", "Days")
    n_levels: int
    offset: int                 # first column of Z
    theta_start: int
    levels: tuple[str, ...] = ()  # the level labels, in Z's order

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def n_theta(self) -> int:
        return self.k * (self.k + 1) // 2


@dataclass(frozen=True)
class SparseFrame:
    response: np.ndarray
    fixed_design: np.ndarray
    fixed_names: tuple[str, ...]
    z: sp.csc_matrix            # n × q
    blocks: tuple[TermBlock, ...]
    notes: tuple[str, ...] = ()

    @property
    def n_obs(self) -> int:
        return int(self.response.shape[0])

    @property
    def n_theta(self) -> int:
        return sum(b.n_theta for b in self.blocks)

    @property
    def lower(self) -> np.ndarray:
        """Lower bound per θ entry: 0 on the diagonal of each T, −∞ elsewhere (lme4's ``lower``)."""
        out = []
        for block in self.blocks:
            for col in range(block.k):
                for row in range(col, block.k):
                    out.append(0.0 if row == col else -np.inf)
        return np.array(out)


def _design(rhs: str, frame: pd.DataFrame):
    """(matrix, R names, dropped) of a right-hand side: the R-meaning builder when present."""
    try:
        from ._r_formula import design
    except ImportError:  # pragma: no cover - the formula module lands separately
        design = None
    if design is not None:
        built = design(rhs, frame)
        return np.asarray(built.matrix, dtype=float), tuple(built.names), tuple(built.dropped)
    from formulaic import model_matrix

    from ._lmm_formula import r_name
    matrix = model_matrix(f"~ {rhs}", frame, na_action="raise")
    return np.asarray(matrix, dtype=float), tuple(r_name(c) for c in matrix.columns), ()


def _variables(rhs: str) -> list[str]:
    try:
        from ._r_formula import variables
    except ImportError:  # pragma: no cover
        from formulaic import Formula
        return sorted(Formula(f"~ {rhs}").required_variables)
    return list(variables(rhs))


def _response(lhs: str, frame: pd.DataFrame) -> np.ndarray:
    try:
        from ._r_formula import response
    except ImportError:  # pragma: no cover
        return np.asarray(frame[lhs], dtype=float)
    return np.asarray(response(lhs, frame), dtype=float).ravel()


def _level_labels(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    if len(columns) == 1:
        return frame[columns[0]].astype(str)
    return frame[list(columns)].astype(str).agg(":".join, axis=1)


def build_sparse_frame(formula: str, data: pd.DataFrame) -> SparseFrame:
    """Parse ``formula`` (any random terms), drop incomplete rows, build y, X and the sparse Z."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ValueError(f"formula must be a string 'response ~ terms'; got {formula!r}")
    lhs, rhs = (part.strip() for part in formula.split("~"))
    if not lhs:
        raise ValueError(f"formula {formula!r} has no response on the left of '~'")
    fixed_chunks, terms = split_random(rhs, formula)
    fixed_rhs = " + ".join(fixed_chunks) if fixed_chunks else "1"
    response_vars = _variables(lhs)
    needed = list(dict.fromkeys(response_vars + _variables(fixed_rhs)
                                + [v for t in terms for v in _variables(t.expr)]))
    grouping = list(dict.fromkeys(c for t in terms if not t.membership for c in t.factors))
    members = list(dict.fromkeys(c for t in terms if t.membership for c in t.columns))
    used = list(dict.fromkeys(needed + grouping + members))
    missing = [name for name in used if name not in data.columns]
    if missing:
        raise ValueError(f"column(s) {missing} used in formula {formula!r} are not in the data; "
                         f"available columns: {list(map(str, data.columns))}")
    keep = data[list(dict.fromkeys(needed + grouping))].notna().all(axis=1)
    for term in terms:
        if term.membership:
            keep &= data[list(term.factors)].notna().any(axis=1)
    frame = data.loc[keep, used].reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"no complete rows: every one of the {len(data)} rows has a missing value in {used}")
    frame = _as_r_factors_except(frame, grouping + members)
    y = _response(lhs, frame)
    x, fixed_names, dropped = _design(fixed_rhs, frame)
    n = len(frame)
    pieces = []
    for term in terms:
        zr, names, _ = _design(term.expr, frame)
        if zr.shape[1] == 0:
            raise ValueError(f"random-effects term ({term.expr} | {term.name}) has no columns")
        if term.membership:
            labels = pd.unique(pd.concat([frame[c].dropna().astype(str) for c in term.factors]))
            levels = np.array(sorted(labels))
            rows, cols, weights = [], [], []
            given = ([frame[w].to_numpy(dtype=float) for w in term.weights] if term.weights else None)
            present = np.column_stack([frame[c].notna().to_numpy() for c in term.factors])
            count = present.sum(axis=1)
            for index, column in enumerate(term.factors):
                values = frame[column]
                mask = values.notna().to_numpy()
                codes = np.searchsorted(levels, values[mask].astype(str).to_numpy())
                rows.append(np.flatnonzero(mask))
                cols.append(codes)
                weights.append(given[index][mask] if given is not None else 1.0 / count[mask])
            rows, cols, weights = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
        else:
            labels = _level_labels(frame, term.factors)
            codes, levels = pd.factorize(labels, sort=True)
            rows, cols, weights = np.arange(n), codes, np.ones(n)
        m = len(levels)
        if m < 2:
            raise ValueError(f"grouping {term.name!r} has {m} level(s) among the complete rows; a random "
                             "effect needs at least 2")
        pieces.append((term, names, m, rows, cols, weights, zr, tuple(str(v) for v in levels)))
    # lme4 (mkReTrms) orders the terms by decreasing number of levels, ties in formula order.
    pieces.sort(key=lambda piece: -piece[2])
    blocks, triplets, offset, theta_start = [], [], 0, 0
    for term, names, m, rows, cols, weights, zr, labels in pieces:
        k = zr.shape[1]
        for j in range(k):
            triplets.append((rows, offset + cols * k + j, weights * zr[rows, j]))
        block = TermBlock(term, names, m, offset, theta_start, labels)
        blocks.append(block)
        offset += m * k
        theta_start += block.n_theta
    z = sp.csc_matrix((np.concatenate([t[2] for t in triplets]),
                       (np.concatenate([t[0] for t in triplets]), np.concatenate([t[1] for t in triplets]))),
                      shape=(n, offset))
    z.sum_duplicates()
    if not (np.isfinite(y).all() and np.isfinite(x).all() and np.isfinite(z.data).all()):
        raise ValueError(f"infinite values in the variables of {formula!r}")
    if x.shape[1] == 0:
        raise ValueError(f"formula {formula!r} has no fixed effects; at least one is needed")
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError(f"fixed-effects design of {formula!r} is rank deficient (columns {list(fixed_names)})")
    for block in blocks:
        if not block.term.membership and block.n_levels * block.k >= n:
            raise ValueError(f"{n} complete observations are too few for {block.n_levels} levels of "
                             f"{block.term.name!r} with {block.k} random effect(s) each (lme4 requires fewer "
                             "random effects than observations)")
    notes = ()
    if dropped:
        from ._r_formula import rank_deficiency_note
        notes = (rank_deficiency_note(dropped),)
    return SparseFrame(y, x, fixed_names, z, tuple(blocks), notes)


def _as_r_factors_except(frame: pd.DataFrame, skip: list[str]) -> pd.DataFrame:
    from ._lmm_formula import _as_r_factors

    others = [c for c in frame.columns if c not in skip]
    converted = _as_r_factors(frame[others], skip="") if others else frame[others]
    out = frame.copy()
    for column in others:
        out[column] = converted[column]
    return out


# -- the profiled deviance -----------------------------------------------------------------------

@dataclass
class SparseDeviance:
    """The profiled (RE)ML deviance of a :class:`SparseFrame` and the quantities at a θ."""

    frame: SparseFrame
    reml: bool = True
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        f = self.frame
        x, y, z = f.fixed_design, f.response, f.z
        self.n, self.p = x.shape
        self.q = z.shape[1]
        self.xtx, self.xty, self.yty = x.T @ x, x.T @ y, float(y @ y)
        ztz = (z.T @ z).tocsc()
        ztx = np.asarray(z.T @ x)
        zty = np.asarray(z.T @ y).ravel()
        # Λᵀ = Σ_a θ_a E_a: E_a has a 1 at each position of Λᵀ that holds θ_a.
        basis = _basis(self)
        n_theta = len(basis)
        self.n_theta = n_theta
        pairs, products = [], []
        abs_ztz = abs(ztz)
        pattern = sp.identity(self.q, format="csc")
        for a in range(n_theta):
            for b in range(a, n_theta):
                product = basis[a] @ ztz @ basis[b].T
                if a != b:
                    product = product + basis[b] @ ztz @ basis[a].T
                product = sp.tril(product).tocoo()
                if product.nnz == 0:
                    continue
                pairs.append((a, b))
                products.append(product)
                pattern = pattern + sp.tril(abs(basis[a]) @ abs_ztz @ abs(basis[b]).T
                                            + abs(basis[b]) @ abs_ztz @ abs(basis[a]).T)
        pattern = sp.tril(pattern).tocoo()
        key = pattern.row.astype(np.int64) * self.q + pattern.col
        order = np.argsort(key)
        self.rows, self.cols, key = pattern.row[order], pattern.col[order], key[order]
        self.pair_index = np.array(pairs, dtype=int).reshape(-1, 2)
        values = np.zeros((len(key), len(pairs)))
        for j, product in enumerate(products):
            where = np.searchsorted(key, product.row.astype(np.int64) * self.q + product.col)
            np.add.at(values[:, j], where, product.data)
        self.pair_values = values
        self.identity_values = (self.rows == self.cols).astype(float)
        self.ztx_basis = np.stack([np.asarray(e @ ztx) for e in basis])          # (nθ, q, p)
        self.zty_basis = np.stack([np.asarray(e @ zty).ravel() for e in basis])  # (nθ, q)
        self.dense = self.q <= DENSE_MAX_Q
        self._symbolic = None
        self.schur = None
        if not self.dense:
            import cvxopt
            self._cvx_rows = cvxopt.matrix(self.rows.astype(np.int32).tolist(), tc="i")
            self._cvx_cols = cvxopt.matrix(self.cols.astype(np.int32).tolist(), tc="i")
            layout = self._schur_layout()
            if layout is not None:
                self.schur = layout if self._faster_with(layout) else None

    def _faster_with(self, layout) -> bool:
        """Whether eliminating the first term by hand beats CHOLMOD here (timed, 3 evaluations each).

        Which is faster depends on the fill: with multiple membership CHOLMOD's factor fills the
        facilitator block through every participant (×2.4 slower here), while for a plain crossed
        design, or slopes in the first term, CHOLMOD is faster (0.47 vs 0.81 ms per evaluation at
        2,000 × 200). Both give the same deviance to rounding.
        """
        import time

        theta = np.where(self.frame.lower == 0.0, 1.0, 0.0)
        timings = {}
        for use in (None, layout):
            self.schur = use
            start = time.perf_counter()
            for _ in range(3):
                self._factor(theta)
            timings[use is not None] = time.perf_counter() - start
        self.schur = None
        return timings[True] < timings[False]

    def _schur_layout(self):
        """Positions of the pattern in the blocks [[D, ·], [B, C]] when the first term is block diagonal.

        The first term (the most levels, e.g. participant) is not a membership, so its block D of
        ``ΛᵀZᵀZΛ + I`` is block diagonal by level (k × k per level). Eliminating it by hand leaves
        the Schur complement ``C − B D⁻¹ Bᵀ`` of the other terms (e.g. 200 facilitators): a small
        dense matrix. The factor differs from CHOLMOD's, but every quantity the deviance uses
        (log|L|², ‖L⁻¹r‖², R_ZX) is invariant to which factor of the same matrix is used.
        """
        first = self.frame.blocks[0]
        if first.term.membership or len(self.frame.blocks) < 2:
            return None
        q1, k = first.n_levels * first.k, first.k
        q2 = self.q - q1
        if q2 > 2000:
            return None
        rows, cols = self.rows, self.cols
        in_d = (rows < q1) & (cols < q1)
        if np.any(rows[in_d] // k != cols[in_d] // k):
            return None
        in_b = (rows >= q1) & (cols < q1)
        in_c = (rows >= q1) & (cols >= q1)
        d_level, d_row, d_col = rows[in_d] // k, rows[in_d] % k, cols[in_d] % k
        b_pattern = sp.csr_matrix((np.arange(1, in_b.sum() + 1, dtype=float), (rows[in_b] - q1, cols[in_b])),
                                  shape=(q2, q1))
        b_order = b_pattern.data.astype(int) - 1   # CSR position → index among the B entries
        return {"q1": q1, "k": k, "q2": q2, "m1": first.n_levels, "in_d": in_d, "in_b": in_b, "in_c": in_c,
                "d": (d_level, d_row, d_col), "b_indptr": b_pattern.indptr, "b_indices": b_pattern.indices,
                "b_order": b_order, "c": (rows[in_c] - q1, cols[in_c] - q1)}

    def _schur_factor(self, values: np.ndarray):
        layout = self.schur
        q1, k, q2, m1 = layout["q1"], layout["k"], layout["q2"], layout["m1"]
        b_values = values[layout["in_b"]][layout["b_order"]]
        c = np.zeros((q2, q2))
        c[layout["c"]] = values[layout["in_c"]]
        c = c + np.tril(c, -1).T
        if k == 1:
            diagonal = np.empty(m1)
            diagonal[layout["d"][0]] = values[layout["in_d"]]
            scale = 1.0 / np.sqrt(diagonal)
            # L21 = B D^(-1/2): the same sparsity as B
            l21 = sp.csr_matrix((b_values * scale[layout["b_indices"]], layout["b_indices"], layout["b_indptr"]),
                                shape=(q2, q1))
            logdet_1 = float(np.sum(np.log(diagonal)))

            def solve_1(r1):
                return r1 * scale[:, None]
        else:
            d = np.zeros((m1, k, k))
            level, row, col = layout["d"]
            d[level, row, col] = values[layout["in_d"]]
            d = d + np.tril(d, -1).transpose(0, 2, 1)
            l1 = np.linalg.cholesky(d)
            inverse_l1 = np.linalg.inv(l1)
            b = sp.csr_matrix((b_values, layout["b_indices"], layout["b_indptr"]), shape=(q2, q1))
            l21 = (b @ sp.block_diag(list(inverse_l1.transpose(0, 2, 1)), format="csr")).tocsr()
            logdet_1 = 2.0 * float(np.sum(np.log(np.diagonal(l1, axis1=1, axis2=2))))

            def solve_1(r1):
                return np.einsum("lij,ljc->lic", inverse_l1, r1.reshape(m1, k, -1)).reshape(q1, -1)
        schur = c - (l21 @ l21.T).toarray()
        l22 = la.cholesky(schur, lower=True, check_finite=False)
        logdet = logdet_1 + 2.0 * float(np.sum(np.log(np.diag(l22))))

        def solve(r):
            r = np.asarray(r, dtype=float)
            shaped = r.reshape(self.q, -1)
            z1 = solve_1(shaped[:q1])
            z2 = la.solve_triangular(l22, shaped[q1:] - l21 @ z1, lower=True, check_finite=False)
            return np.vstack([z1, z2]).reshape(r.shape)
        return solve, logdet

    # The factor of Λᵀ ZᵀZ Λ + I at θ, with solves by L⁻¹P and log|L|².
    def _factor(self, theta: np.ndarray):
        pair = theta[self.pair_index[:, 0]] * theta[self.pair_index[:, 1]]
        values = self.identity_values + self.pair_values @ pair
        if self.schur is not None:
            return self._schur_factor(values)
        if self.dense:
            m = np.zeros((self.q, self.q))
            m[self.rows, self.cols] = values
            chol = la.cholesky(m, lower=True, check_finite=False)

            def solve(b):
                return la.solve_triangular(chol, b, lower=True, check_finite=False)
            return solve, 2.0 * float(np.sum(np.log(np.diag(chol))))
        import cvxopt
        from cvxopt import cholmod

        matrix = cvxopt.spmatrix(cvxopt.matrix(values), self._cvx_rows, self._cvx_cols, (self.q, self.q))
        if self._symbolic is None:
            cholmod.options["supernodal"] = 2
            self._symbolic = cholmod.symbolic(matrix, uplo="L")
        factor = self._symbolic
        cholmod.numeric(matrix, factor)
        logdet = 2.0 * float(np.sum(np.log(np.asarray(cholmod.diag(factor)).ravel())))

        def solve(b):
            b = np.asarray(b, dtype=float)
            shaped = b.reshape(self.q, -1)
            out = cvxopt.matrix(np.ascontiguousarray(shaped))
            cholmod.solve(factor, out, sys=7)
            cholmod.solve(factor, out, sys=4)
            return np.asarray(out).reshape(b.shape)
        return solve, logdet

    def pieces(self, theta: np.ndarray) -> dict:
        """Everything the deviance, β and vcov(β) need at θ (cached for the last θ)."""
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        solve, logdet_l = self._factor(theta)
        ltzty = np.tensordot(theta, self.zty_basis, axes=1)   # Λᵀ Zᵀ y
        ltztx = np.tensordot(theta, self.ztx_basis, axes=1)   # Λᵀ Zᵀ X
        both = solve(np.column_stack([ltzty, ltztx]))
        cu, rzx = both[:, 0], both[:, 1:]
        rxtrx = self.xtx - rzx.T @ rzx
        try:
            rx = la.cholesky(rxtrx, lower=False, check_finite=False)
        except la.LinAlgError:
            rx = None
        rhs = self.xty - rzx.T @ cu
        if rx is None:
            out = {"ok": False}
        else:
            beta = la.cho_solve((rx, False), rhs, check_finite=False)
            pwrss = self.yty - cu @ cu - beta @ rhs
            out = {"ok": pwrss > 0, "beta": beta, "pwrss": pwrss, "logdet_l": logdet_l,
                   "logdet_rx": 2.0 * float(np.sum(np.log(np.abs(np.diag(rx))))), "rx": rx}
        # Derivatives in σ (Satterthwaite) revisit each θ many times: keep the recent ones.
        if len(self._cache) >= 256:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = out
        return out

    @property
    def n_prime(self) -> int:
        return self.n - self.p if self.reml else self.n

    def profiled(self, theta: np.ndarray) -> float:
        got = self.pieces(theta)
        if not got["ok"]:
            return np.inf
        n = self.n_prime
        value = got["logdet_l"] + n * (1.0 + np.log(2.0 * np.pi * got["pwrss"] / n))
        if self.reml:
            value += got["logdet_rx"]
        return float(value)

    def sigma(self, theta: np.ndarray) -> float:
        return float(np.sqrt(self.pieces(theta)["pwrss"] / self.n_prime))

    def varpar_deviance(self, varpar: np.ndarray) -> float:
        """The deviance with σ not profiled: f(θ, σ), the function lmerTest differentiates."""
        theta, sigma = varpar[:-1], varpar[-1]
        got = self.pieces(theta)
        if not got["ok"] or sigma <= 0:
            return np.inf
        n = self.n_prime
        value = got["logdet_l"] + n * np.log(2.0 * np.pi * sigma**2) + got["pwrss"] / sigma**2
        if self.reml:
            value += got["logdet_rx"]
        return float(value)

    def vcov_beta(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        rx = self.pieces(theta)["rx"]
        inverse = la.cho_solve((rx, False), np.eye(self.p), check_finite=False)
        return sigma**2 * inverse

    def relative_factor(self, theta: np.ndarray, block: TermBlock) -> np.ndarray:
        """The block's k × k lower-triangular T (covariance σ² T Tᵀ)."""
        return relative_factor(theta, block)


def relative_factor(theta: np.ndarray, block: TermBlock) -> np.ndarray:
    """A term's k × k lower-triangular T from θ (its lower triangle, column by column, as lme4's theta)."""
    values = np.asarray(theta)[block.theta_start:block.theta_start + block.n_theta]
    t = np.zeros((block.k, block.k))
    index = 0
    for col in range(block.k):
        for row in range(col, block.k):
            t[row, col] = values[index]
            index += 1
    return t


# -- numerical derivatives (numDeriv's Richardson extrapolation) ----------------------------------

def richardson_gradient(f, x: np.ndarray, d: float = 1e-4, r: int = 4) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    out = np.zeros_like(x)
    for i in range(len(x)):
        h = d * abs(x[i]) + (1e-4 if abs(x[i]) < 1.5e-8 * 1e3 else 0.0)
        table = []
        for _k in range(r):
            step = np.zeros_like(x)
            step[i] = h
            table.append((f(x + step) - f(x - step)) / (2 * h))
            h /= 2
        for m in range(1, r):
            table = [(4**m * table[j + 1] - table[j]) / (4**m - 1) for j in range(len(table) - 1)]
        out[i] = table[0]
    return out


def richardson_jacobian(f, x: np.ndarray, d: float = 1e-4, r: int = 4) -> np.ndarray:
    """∂f/∂x_i for a vector- or matrix-valued f: shape (len(x), *f(x).shape)."""
    x = np.asarray(x, dtype=float)
    base = np.asarray(f(x))
    out = np.zeros((len(x),) + base.shape)
    for i in range(len(x)):
        h = d * abs(x[i]) + (1e-4 if abs(x[i]) < 1.5e-5 else 0.0)
        table = []
        for _k in range(r):
            step = np.zeros_like(x)
            step[i] = h
            table.append((np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2 * h))
            h /= 2
        for m in range(1, r):
            table = [(4**m * table[j + 1] - table[j]) / (4**m - 1) for j in range(len(table) - 1)]
        out[i] = table[0]
    return out


def richardson_hessian(f, x: np.ndarray, d: float = 0.1, r: int = 4) -> np.ndarray:
    """Second derivatives by central differences with Richardson extrapolation (numDeriv's genD)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    f0 = f(x)
    base = np.array([d * abs(v) + (1e-4 if abs(v) < 1.5e-5 else 0.0) for v in x])
    out = np.zeros((n, n))

    def extrapolate(table):
        for m in range(1, r):
            table = [(4**m * table[j + 1] - table[j]) / (4**m - 1) for j in range(len(table) - 1)]
        return table[0]

    for i in range(n):
        table, h = [], base.copy()
        for _k in range(r):
            step = np.zeros(n)
            step[i] = h[i]
            table.append((f(x + step) - 2 * f0 + f(x - step)) / h[i] ** 2)
            h /= 2
        out[i, i] = extrapolate(table)
        for j in range(i):
            table, h = [], base.copy()
            for _k in range(r):
                si, sj = np.zeros(n), np.zeros(n)
                si[i], sj[j] = h[i], h[j]
                table.append((f(x + si + sj) - f(x + si - sj) - f(x - si + sj) + f(x - si - sj))
                             / (4 * h[i] * h[j]))
                h /= 2
            out[i, j] = out[j, i] = extrapolate(table)
    return out


# -- fitting -------------------------------------------------------------------------------------

def optimize_theta(deviance: SparseDeviance, lower: np.ndarray) -> tuple[np.ndarray, bool]:
    """Minimise the profiled deviance from lme4's start (diagonal 1, off-diagonal 0)."""
    theta = np.where(np.isfinite(lower), 1.0, 0.0)
    bounds = [(0.0, None) if np.isfinite(b) else (None, None) for b in lower]

    def value_and_gradient(point):
        # Forward differences get L-BFGS-B near the optimum with one evaluation per θ entry;
        # the Newton steps below, on Richardson derivatives, make it exact.
        value = deviance.profiled(point)
        gradient = np.zeros_like(point)
        for i in range(len(point)):
            h = 1e-6 * max(1.0, abs(point[i]))
            up = point.copy()
            up[i] += h
            gradient[i] = (deviance.profiled(up) - value) / h
        return value, gradient

    fit = optimize.minimize(value_and_gradient, theta, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": 10000, "ftol": 1e-12, "gtol": 1e-6, "maxcor": 20})
    theta = np.asarray(fit.x, dtype=float)
    # Newton polish on the free coordinates: quadratic convergence to the optimum lme4 reaches
    # with tight tolerances (a step or two after L-BFGS-B).
    for _ in range(5):
        free = ~(np.isfinite(lower) & (theta <= 1e-10))
        if not free.any():
            break

        derivatives = _free_derivatives(deviance, theta, free)
        if derivatives is None:
            break
        gradient, hessian, scaled = derivatives
        if np.max(np.abs(scaled)) < 1e-7:
            break
        step = -np.linalg.solve(hessian, gradient)
        current = deviance.profiled(theta)
        moved = False
        for scale in (1.0, 0.5, 0.25, 0.125):
            trial = theta.copy()
            trial[free] += scale * step
            trial = np.where(np.isfinite(lower), np.maximum(trial, 0.0), trial)
            if deviance.profiled(trial) <= current:
                moved = np.max(np.abs(trial - theta)) > 1e-13
                theta = trial
                break
        if not moved:
            break
    for index in np.flatnonzero(np.isfinite(lower) & (theta > 0) & (theta < 1e-6)):
        trial = theta.copy()
        trial[index] = 0.0
        if deviance.profiled(trial) <= deviance.profiled(theta) + 1e-10:
            theta = trial
    return theta, converged(deviance, theta, lower)


def _free_derivatives(deviance: SparseDeviance, theta: np.ndarray, free: np.ndarray):
    """Gradient, Hessian and Cholesky-scaled gradient of the deviance in the free θ entries; None if H is not PD."""
    def restricted(sub):
        full = theta.copy()
        full[free] = sub
        return deviance.profiled(full)
    gradient = richardson_gradient(restricted, theta[free], r=2)
    hessian = richardson_hessian(restricted, theta[free], r=2)
    try:
        factor = np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return None
    return gradient, hessian, np.linalg.solve(factor, gradient)


# lme4's check.conv.grad default: the gradient scaled by the Cholesky factor of the Hessian
# (solve(chol(H), g), lme4's checkConv) below 2e-3.
GRADIENT_CHECK_TOLERANCE = 2e-3


def converged(deviance: SparseDeviance, theta: np.ndarray, lower: np.ndarray) -> bool:
    """lme4's convergence check on the free coordinates (those not on their bound)."""
    if not np.isfinite(deviance.profiled(theta)):
        return False
    on_bound = np.isfinite(lower) & (theta <= 0)
    free = ~on_bound
    if on_bound.any():
        # at a zero variance the deviance must not go down by moving up from the bound
        up = theta.copy()
        up[on_bound] = 1e-6
        if deviance.profiled(up) < deviance.profiled(theta) - 1e-8:
            return False
    if not free.any():
        return True

    derivatives = _free_derivatives(deviance, theta, free)
    if derivatives is None:
        return False
    scaled = derivatives[2]
    return bool(np.max(np.abs(scaled)) < GRADIENT_CHECK_TOLERANCE)


def unique_group_names(names: list[str]) -> list[str]:
    """R's ``make.unique``: a repeated group name gets ``.1``, ``.2``, … (``Subject``, ``Subject.1``)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            out.append(f"{name}.{seen[name]}")
        else:
            seen[name] = 0
            out.append(name)
    return out


def random_effects(deviance: SparseDeviance, theta: np.ndarray, sigma: float, names: list[str]) -> pd.DataFrame:
    """Conditional modes of the random effects and their conditional SDs, as lme4's ``ranef(m, condVar = TRUE)``.

    With u the spherical random effects, the conditional mode solves
    ``(ΛᵀZᵀZΛ + I) u = ΛᵀZᵀ(y − Xβ)`` and b = Λu; the conditional variance of b is
    ``σ² Λ (ΛᵀZᵀZΛ + I)⁻¹ Λᵀ`` (Bates et al. 2015, section 3.4; lme4's ``condVar``), of which the
    diagonal is reported (``condsd``) — the layout of ``as.data.frame(ranef(m, condVar = TRUE))``:
    ``grpvar, term, grp, condval, condsd``.
    """
    frame = deviance.frame
    q = deviance.q
    pair = theta[deviance.pair_index[:, 0]] * theta[deviance.pair_index[:, 1]]
    values = deviance.identity_values + deviance.pair_values @ pair
    m = sp.csc_matrix((values, (deviance.rows, deviance.cols)), shape=(q, q))
    m = (m + sp.tril(m, -1).T).tocsc()
    lambda_t = sp.csc_matrix(sum(t * e for t, e in zip(theta, _basis(deviance), strict=True)))
    residual = frame.response - frame.fixed_design @ deviance.pieces(theta)["beta"]
    rhs = lambda_t @ (frame.z.T @ residual)
    from scipy.sparse.linalg import splu

    u = splu(m).solve(rhs)
    # diag(σ² Λ M⁻¹ Λᵀ)_i = σ² ‖L⁻¹ P (Λᵀ)_{·i}‖²: one solve with the deviance's own factor
    if q <= CONDITIONAL_VARIANCE_MAX_Q:
        solve, _ = deviance._factor(theta)
        cond_var = sigma**2 * np.sum(solve(lambda_t.toarray()) ** 2, axis=0)
    else:
        cond_var = np.full(q, np.nan)
    b = lambda_t.T @ u
    rows = []
    for name, block in zip(names, frame.blocks, strict=True):
        labels = _levels_of(block, frame)
        for j, term in enumerate(block.names):   # R's order: by column, then level
            for level in range(block.n_levels):
                index = block.offset + level * block.k + j
                rows.append({"grpvar": name, "term": term, "grp": labels[level], "condval": b[index],
                             "condsd": float(np.sqrt(cond_var[index])) if np.isfinite(cond_var[index]) else np.nan})
    return pd.DataFrame(rows, columns=["grpvar", "term", "grp", "condval", "condsd"])


def _basis(deviance: SparseDeviance) -> list[sp.csc_matrix]:
    """E_a per θ entry: Λᵀ = Σ_a θ_a E_a (Λ[l·k+row, l·k+col] = θ_a sits at Λᵀ[l·k+col, l·k+row])."""
    out = []
    for block in deviance.frame.blocks:
        for col in range(block.k):
            for row in range(col, block.k):
                levels = np.arange(block.n_levels)
                r = block.offset + levels * block.k + col
                c = block.offset + levels * block.k + row
                out.append(sp.csc_matrix((np.ones(len(levels)), (r, c)), shape=(deviance.q, deviance.q)))
    return out


def _levels_of(block: TermBlock, frame: SparseFrame) -> list[str]:
    return list(block.levels) if block.levels else [str(i) for i in range(block.n_levels)]
