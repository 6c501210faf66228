"""R's meaning of a model formula's right-hand side: ``terms.formula`` and ``model.matrix``.

What ``stats::model.matrix(~ rhs, data)`` gives, column for column and name for name, so that
a coefficient table here lines up with ``lm``/``lme4`` output:

* terms as R expands them (``+ - * / : ^ %in%``, ``0``/``1``/``-1`` for the intercept), ordered
  by degree and then by appearance (``terms.formula``, keep.order = FALSE), the variables of an
  interaction printed in the order they first appear in the formula (``b:a + a`` → ``a``, ``b:a``);
* factors coded by treatment contrasts, or by one indicator per level where R does so (the
  factor's term without that factor is not among the earlier terms, and the first factor of a
  model without intercept) — R's ``TermCode`` rule; levels in R's order (strings sorted C-locale,
  ``FALSE``/``TRUE`` for logicals, a pandas Categorical's own order, unused levels dropped);
* variables that are expressions, with R's arithmetic (``^`` is power) and R's deparsed names:
  ``I(x^2)``, ``log(Days + 1)``, ``scale(Days)``, ``factor(Days)1``, ``poly(Days, 2)1``;
  ``poly`` is R's orthogonal polynomial (QR of the centred Vandermonde matrix, ``stats::poly``);
* data columns always win: an identifier is a column of the data even if it is also a helper's
  name (``Treatment``, ``C``, ``I``, ``poly``, ``log``); only a *call* ``f(...)`` names a function;
* columns dropped for rank deficiency as ``lme4:::chkRank.drop.cols``: LINPACK's ``dqrdc2``
  (Householder QR with limited column pivoting, tolerance 1e-7) keeps the first ``rank`` pivoted
  columns.

Why not formulaic (as the rest of the package's guidance would suggest): it gives different
answers for R formulas — ``^`` inside ``I()`` is Python's bitwise XOR (weeks 0..5 squared
become 2, 3, 0, 1, 6, 7), names differ (``I(age ** 2)``), identifiers such as ``C`` or ``poly``
are its own functions rather than data columns, ``poly`` needs a namespace, ``factor`` is not
known, and a factor without its main effect is coded differently. The statistics here must
equal R's, so the grammar is implemented to R's definition (R Core, ``src/library/stats/src/
model.c``: ``EncodeVars``, ``TermCode``, ``modelmatrix``).

Anything outside this grammar raises ``ValueError`` naming the term and what is supported.

References
----------
Chambers JM, Hastie TJ (1992). *Statistical Models in S*, ch. 2 (formulas, coding of factors).
R Core Team (2022). R 4.2.2: ``?formula``, ``?model.matrix``, ``?poly``, ``?scale``.
Bates D, Mächler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models using lme4.
*Journal of Statistical Software* 67(1); lme4 1.1-31 ``chkRank.drop.cols``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

__all__ = ["RDesign", "design", "rank_deficiency_note", "response", "variables", "SUPPORTED_FORMULA"]

SUPPORTED_FUNCTIONS = ("I", "log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "scale", "poly",
                       "factor", "as.factor")
SUPPORTED_FORMULA = (
    "supported: columns of the data, the operators + - * / : ^ %in% and parentheses, 0 / 1 / -1 "
    "for the intercept, and the functions I(), log(x[, base]), log2(), log10(), log1p(), exp(), "
    "sqrt(), abs(), scale(x[, center, scale]), poly(x, degree[, raw]), factor() / as.factor(); "
    "inside a function R's arithmetic + - * / ^ %% %/% and comparisons"
)
RANK_TOLERANCE = 1e-7  # lme4's chkRank.drop.cols default
_CONSTANTS = {"T": True, "F": False, "pi": math.pi}
_KEYWORDS = {"TRUE": True, "FALSE": False}

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)"
    r"|(?P<name>`[^`]+`|[A-Za-z.][A-Za-z0-9._]*)"
    r"|(?P<string>\"[^\"]*\"|'[^']*')"
    r"|(?P<op>%[^%\s]*%|\*\*|==|!=|<=|>=|&&|\|\||[-+*/^:(),=<>!&|~]))"
)
_SYNTACTIC = re.compile(r"^(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*$")


@dataclass(frozen=True)
class RDesign:
    """A model matrix as R's ``model.matrix`` builds it, after lme4's rank check.

    Attributes
    ----------
    matrix : ndarray, shape (n, p)
    names : tuple of str
        R's column names, e.g. ``"(Intercept)"``, ``"SexMale"``, ``"I(Days^2)"``, ``"poly(Days, 2)1"``.
    dropped : tuple of str
        Columns dropped for rank deficiency (lme4's choice), in R's order.
    """

    matrix: np.ndarray
    names: tuple[str, ...]
    dropped: tuple[str, ...]


# ---------------------------------------------------------------- parsing (R's grammar, ?Syntax)

@dataclass(frozen=True)
class _Num:
    value: float
    integer: bool = False


@dataclass(frozen=True)
class _Name:
    name: str


@dataclass(frozen=True)
class _Str:
    value: str


@dataclass(frozen=True)
class _Call:
    function: str
    args: tuple[tuple[str | None, object], ...]


@dataclass(frozen=True)
class _Paren:
    inner: object


@dataclass(frozen=True)
class _Unary:
    op: str
    operand: object


@dataclass(frozen=True)
class _Binary:
    op: str
    left: object
    right: object


# binding powers, highest first in R: ^ (right), unary - +, :, %any%, * /, + -, comparisons, !, & &&, | ||
_BINARY = {"^": (140, 139), ":": (120, 121), "*": (100, 101), "/": (100, 101), "+": (90, 91), "-": (90, 91),
           "<": (80, 81), ">": (80, 81), "<=": (80, 81), ">=": (80, 81), "==": (80, 81), "!=": (80, 81),
           "&": (60, 61), "&&": (60, 61), "|": (50, 51), "||": (50, 51)}
_UNARY = {"-": 130, "+": 130, "!": 70}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot read formula {text!r} at {text[position:]!r}. {SUPPORTED_FORMULA}")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ValueError(f"formula {self.text!r} ends unexpectedly. {SUPPORTED_FORMULA}")
        self.position += 1
        return token

    def expect(self, value: str) -> None:
        token = self.take()
        if token[1] != value:
            raise ValueError(f"expected {value!r} in formula {self.text!r}, found {token[1]!r}")

    def parse(self) -> object:
        if not self.tokens:
            raise ValueError(f"empty formula {self.text!r}. {SUPPORTED_FORMULA}")
        node = self.expression(0)
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()[1]!r} in formula {self.text!r}. {SUPPORTED_FORMULA}")
        return node

    def expression(self, minimum: int) -> object:
        kind, value = self.take()
        if kind == "op" and value in _UNARY:
            left = _Unary(value, self.expression(_UNARY[value]))
        elif kind == "op" and value == "(":
            left = _Paren(self.expression(0))
            self.expect(")")
        elif kind == "number":
            integer = value.endswith("L")
            left = _Num(float(value.rstrip("L")), integer)
        elif kind == "string":
            left = _Str(value[1:-1])
        elif kind == "name":
            name = value[1:-1] if value.startswith("`") else value
            if self.peek() == ("op", "("):
                left = self.call(name)
            else:
                left = _Name(name)
        else:
            raise ValueError(f"unexpected {value!r} in formula {self.text!r}. {SUPPORTED_FORMULA}")
        while True:
            token = self.peek()
            if token is None or token[0] != "op":
                break
            op = "^" if token[1] == "**" else token[1]
            if op.startswith("%") and len(op) > 1:
                powers = (110, 111)
            elif op in _BINARY:
                powers = _BINARY[op]
            else:
                break
            if powers[0] < minimum:
                break
            self.take()
            left = _Binary(op, left, self.expression(powers[1]))
        return left

    def call(self, function: str) -> _Call:
        self.expect("(")
        args: list[tuple[str | None, object]] = []
        if self.peek() == ("op", ")"):
            self.take()
            return _Call(function, ())
        while True:
            name = None
            token = self.peek()
            following = self.tokens[self.position + 1] if self.position + 1 < len(self.tokens) else None
            if token is not None and token[0] == "name" and following == ("op", "="):
                name = token[1].strip("`")
                self.position += 2
            args.append((name, self.expression(0)))
            token = self.take()
            if token[1] == ")":
                return _Call(function, tuple(args))
            if token[1] != ",":
                raise ValueError(f"expected ',' or ')' in the call {function}(...) of formula {self.text!r}")


def _parse(text: str) -> object:
    if not isinstance(text, str):
        raise ValueError(f"a formula side must be a string; got {type(text).__name__}")
    if "~" in text:
        raise ValueError(f"{text!r} must be one side of a formula, without '~'")
    return _Parser(text).parse()


# ---------------------------------------------------------------- deparse (R's printed names)

def _r_number(value: float) -> str:
    """``as.character`` / ``deparse`` of a double: 15 significant digits, fixed unless longer."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return "Inf" if value > 0 else ("-Inf" if value < 0 else "NaN")
    decimal = Decimal(f"{value:.15g}").normalize()
    sign, digits, exponent = decimal.as_tuple()
    mantissa = "".join(map(str, digits))
    power = len(mantissa) - 1 + exponent  # value = d.ddd × 10^power
    fixed = format(decimal, "f")
    scientific = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
    scientific += f"e{'-' if power < 0 else '+'}{abs(power):02d}"
    if sign:
        scientific = "-" + scientific
    return fixed if len(fixed) <= len(scientific) else scientific


def _quote_name(name: str) -> str:
    return name if _SYNTACTIC.match(name) else f"`{name}`"


def _deparse(node: object) -> str:
    if isinstance(node, _Name):
        return _quote_name(node.name)
    if isinstance(node, _Num):
        text = _r_number(node.value)
        return f"{text}L" if node.integer else text
    if isinstance(node, _Str):
        return f'"{node.value}"'
    if isinstance(node, _Paren):
        return f"({_deparse(node.inner)})"
    if isinstance(node, _Unary):
        return f"{node.op}{_deparse(node.operand)}"
    if isinstance(node, _Call):
        args = ", ".join(_deparse(value) if name is None else f"{_quote_name(name)} = {_deparse(value)}"
                         for name, value in node.args)
        return f"{_quote_name(node.function)}({args})"
    if isinstance(node, _Binary):
        tight = node.op in ("^", ":", "/", "%%", "%/%")
        separator = node.op if tight else f" {node.op} "
        return f"{_deparse(node.left)}{separator}{_deparse(node.right)}"
    raise TypeError(node)  # pragma: no cover


# ---------------------------------------------------------------- terms (R's EncodeVars)

_FORMULA_OPERATORS = {"+", "-", "*", "/", ":", "^", "%in%"}


class _Terms:
    """Expand a right-hand side into R's terms: sets of variable indices, plus the intercept."""

    def __init__(self, text: str, intercept_default: bool):
        self.text = text
        self.variables: list[object] = []   # parsed expression of each variable, in appearance order
        self.labels: list[str] = []
        self.intercept = intercept_default
        self.parity = True
        tree = _parse(text)
        terms = [term for term in self.encode(tree) if term]
        # keep.order = FALSE: by degree, ties in order of appearance
        self.terms = sorted(terms, key=len)

    def variable(self, node: object) -> list[frozenset[int]]:
        if isinstance(node, _Name) and node.name == ".":
            raise ValueError(f"'.' (all other columns) in {self.text!r} is not supported; name the columns. "
                             f"{SUPPORTED_FORMULA}")
        if isinstance(node, _Call):
            if node.function not in SUPPORTED_FUNCTIONS:
                raise ValueError(f"term {_deparse(node)!r} in {self.text!r}: function {node.function}() is not "
                                 f"supported. {SUPPORTED_FORMULA}")
        if isinstance(node, (_Num, _Str)):
            raise ValueError(f"term {_deparse(node)!r} in {self.text!r} is a constant; only 0, 1 and -1 (the "
                             f"intercept) may stand alone. {SUPPORTED_FORMULA}")
        label = _deparse(node)
        if label not in self.labels:
            self.labels.append(label)
            self.variables.append(node)
        return [frozenset({self.labels.index(label)})]

    def encode(self, node: object) -> list[frozenset[int]]:
        if isinstance(node, _Num) and node.value in (0.0, 1.0):
            self.intercept = (node.value == 1.0) == self.parity
            return []
        if isinstance(node, _Paren):
            return self.encode(node.inner)
        if isinstance(node, _Unary) and node.op in "+-":
            if node.op == "+":
                return self.encode(node.operand)
            self.parity = not self.parity
            self.encode(node.operand)   # deleting from nothing: only the intercept can change
            self.parity = not self.parity
            return []
        if isinstance(node, _Binary) and node.op == "|":
            raise ValueError(f"random-effects term {_deparse(node)!r} in {self.text!r} is not part of a fixed-"
                             f"effects right-hand side. {SUPPORTED_FORMULA}")
        if not (isinstance(node, _Binary) and node.op in _FORMULA_OPERATORS):
            return self.variable(node)
        op = node.op
        if op == "-":
            left = self.encode(node.left)
            self.parity = not self.parity
            right = self.encode(node.right)
            self.parity = not self.parity
            return [term for term in left if term not in right]
        if op == "^":
            power = node.right
            if not (isinstance(power, _Num) and power.value >= 1 and power.value == int(power.value)):
                raise ValueError(f"in {_deparse(node)!r} of {self.text!r} the power of a formula term must be a "
                                 "positive whole number (use I() for arithmetic powers)")
            left = self.encode(node.left)
            right = left
            for _ in range(int(power.value) - 1):
                right = _unique([a | b for a in left for b in right])
            return _unique(right)
        left = self.encode(node.left)
        right = self.encode(node.right)
        if op == "+":
            return _unique(left + right)
        if op == ":":
            return _unique([a | b for a in left for b in right])
        if op == "*":
            return _unique(left + right + [a | b for a in left for b in right])
        if op == "%in%":
            inside = frozenset().union(*right) if right else frozenset()
            return _unique([a | inside for a in left])
        # op == "/": a/b = a + b %in% a (R's NestTerms)
        outside = frozenset().union(*left) if left else frozenset()
        return _unique(left + [b | outside for b in right])


def _unique(terms: list[frozenset[int]]) -> list[frozenset[int]]:
    return list(dict.fromkeys(terms))


def _names_in(node: object, out: list[str]) -> None:
    if isinstance(node, _Name):
        out.append(node.name)
    elif isinstance(node, _Paren):
        _names_in(node.inner, out)
    elif isinstance(node, _Unary):
        _names_in(node.operand, out)
    elif isinstance(node, _Binary):
        _names_in(node.left, out)
        _names_in(node.right, out)
    elif isinstance(node, _Call):
        for _, value in node.args:
            _names_in(value, out)


def variables(rhs: str) -> list[str]:
    """Data columns a right-hand side uses, in order of first appearance (no response).

    ``T``, ``F`` and ``pi`` are R's constants unless the data has such a column; they are not listed.

    Raises
    ------
    ValueError
        If ``rhs`` is not a supported R formula right-hand side (the message names the term).
    """
    terms = _Terms(rhs, True)
    names: list[str] = []
    for node in terms.variables:
        _names_in(node, names)
    return [name for name in dict.fromkeys(names) if name not in _CONSTANTS and name not in _KEYWORDS]


# ---------------------------------------------------------------- evaluation of variables

@dataclass(frozen=True)
class _Factor:
    codes: np.ndarray           # int, -1 for missing
    levels: tuple[str, ...]


@dataclass(frozen=True)
class _Matrix:
    values: np.ndarray          # n × k
    colnames: tuple[str, ...] | None


def _factor_from_column(values: pd.Series, name: str) -> _Factor | np.ndarray:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if dtype.ordered:
            raise ValueError(f"column {name!r} is an ordered Categorical: R codes ordered factors with "
                             "polynomial contrasts (contr.poly), which are not supported; make it unordered")
        categories = [str(level) for level in dtype.categories]
        return _Factor(np.asarray(values.cat.codes, dtype=int), tuple(categories))
    if pd.api.types.is_bool_dtype(dtype):
        return np.asarray(values, dtype=bool)
    if pd.api.types.is_numeric_dtype(dtype):
        return np.asarray(values.astype(float), dtype=float)
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        present = values.notna().to_numpy()
        labels = values.astype(str).to_numpy()
        levels = sorted(set(labels[present]))  # code-point order = C-locale collation
        codes = np.full(labels.shape[0], -1, dtype=int)
        codes[present] = np.searchsorted(np.array(levels, dtype=object), labels[present])
        return _Factor(codes, tuple(levels))
    raise ValueError(f"column {name!r} has type {dtype}, which a model formula cannot use")


def _as_factor(value: object, label: str) -> _Factor:
    if isinstance(value, _Factor):
        used = sorted(set(value.codes[value.codes >= 0].tolist()))
        return _recode(value, used)
    if isinstance(value, np.ndarray) and value.dtype == bool:
        levels = tuple(lvl for lvl, flag in (("FALSE", False), ("TRUE", True)) if (value == flag).any())
        codes = value.astype(int) if len(levels) == 2 else np.zeros(value.shape[0], dtype=int)
        return _Factor(codes, levels)
    if isinstance(value, np.ndarray) and value.ndim == 1:
        present = ~np.isnan(value)
        unique = np.unique(value[present])
        codes = np.full(value.shape[0], -1, dtype=int)
        codes[present] = np.searchsorted(unique, value[present])
        return _Factor(codes, tuple(_r_number(float(v)) for v in unique))
    raise ValueError(f"cannot make a factor of {label!r}")


def _recode(factor: _Factor, used: list[int]) -> _Factor:
    mapping = np.full(len(factor.levels) + 1, -1, dtype=int)
    for new, old in enumerate(used):
        mapping[old] = new
    codes = np.where(factor.codes >= 0, mapping[factor.codes], -1)
    return _Factor(codes, tuple(factor.levels[i] for i in used))


class _Evaluator:
    def __init__(self, frame: pd.DataFrame, where: str):
        self.frame = frame
        self.where = where
        self.n = len(frame)

    def fail(self, node: object, why: str) -> ValueError:
        return ValueError(f"term {_deparse(node)!r} in {self.where!r}: {why}. {SUPPORTED_FORMULA}")

    def numeric(self, value: object, node: object) -> np.ndarray | float:
        if isinstance(value, (_Factor, _Matrix)) or isinstance(value, str):
            raise self.fail(node, "arithmetic needs numbers, this is a factor, matrix or string")
        if isinstance(value, np.ndarray):
            return value.astype(float)
        return float(value)

    def evaluate(self, node: object):
        if isinstance(node, _Name):
            if node.name in self.frame.columns:
                return _factor_from_column(self.frame[node.name], node.name)
            if node.name in _KEYWORDS:
                return _KEYWORDS[node.name]
            if node.name in _CONSTANTS:
                return _CONSTANTS[node.name]
            raise ValueError(f"column {node.name!r} used in {self.where!r} is not in the data; available "
                             f"columns: {list(map(str, self.frame.columns))}")
        if isinstance(node, _Num):
            return node.value
        if isinstance(node, _Str):
            return node.value
        if isinstance(node, _Paren):
            return self.evaluate(node.inner)
        if isinstance(node, _Unary):
            value = self.evaluate(node.operand)
            if node.op == "!":
                return ~np.asarray(value, dtype=bool)
            number = self.numeric(value, node)
            return -number if node.op == "-" else number
        if isinstance(node, _Binary):
            return self.binary(node)
        if isinstance(node, _Call):
            return self.call(node)
        raise TypeError(node)  # pragma: no cover

    def binary(self, node: _Binary):
        left, right = self.evaluate(node.left), self.evaluate(node.right)
        op = node.op
        if op in ("==", "!=") and (isinstance(left, _Factor) or isinstance(right, _Factor)):
            factor, other = (left, right) if isinstance(left, _Factor) else (right, left)
            if not isinstance(other, (str, float)):
                raise self.fail(node, "a factor can be compared with one value only")
            text = other if isinstance(other, str) else _r_number(other)
            labels = np.array(factor.levels + ("",), dtype=object)[factor.codes]
            equal = labels == text
            return equal if op == "==" else ~equal
        if op in ("&", "&&", "|", "||"):
            a, b = np.asarray(left, dtype=bool), np.asarray(right, dtype=bool)
            return (a & b) if op in ("&", "&&") else (a | b)
        a, b = self.numeric(left, node), self.numeric(right, node)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                return np.true_divide(a, b)
            if op == "^":
                return np.power(a, b)
            if op == "%%":
                return np.mod(a, b)
            if op == "%/%":
                return np.floor_divide(a, b)
            comparisons = {"<": np.less, ">": np.greater, "<=": np.less_equal, ">=": np.greater_equal,
                           "==": np.equal, "!=": np.not_equal}
            if op in comparisons:
                return comparisons[op](a, b)
        raise self.fail(node, f"the operator {op!r} is not supported inside a function")

    def arguments(self, node: _Call, formals: tuple[str, ...]) -> dict[str, object]:
        """R's argument matching (exact names, then positions)."""
        matched: dict[str, object] = {}
        positional = []
        for name, value in node.args:
            if name is None:
                positional.append(value)
            elif name in formals and name not in matched:
                matched[name] = value
            else:
                raise self.fail(node, f"{node.function}() has no argument {name!r} here (arguments: "
                                      f"{', '.join(formals)})")
        for value in positional:
            free = [formal for formal in formals if formal not in matched]
            if not free:
                raise self.fail(node, f"too many arguments to {node.function}()")
            matched[free[0]] = value
        if formals[0] not in matched:
            raise self.fail(node, f"{node.function}() needs its argument {formals[0]!r}")
        return matched

    def constant(self, node: object, call: _Call, what: str):
        value = self.evaluate(node)
        if isinstance(value, np.ndarray) or isinstance(value, (_Factor, _Matrix, str)):
            raise self.fail(call, f"{what} must be a single constant")
        return value

    def call(self, node: _Call):
        function = node.function
        if function not in SUPPORTED_FUNCTIONS:
            raise self.fail(node, f"function {function}() is not supported")
        if function == "I":
            args = self.arguments(node, ("x",))
            return self.evaluate(args["x"])
        if function in ("factor", "as.factor"):
            args = self.arguments(node, ("x",))
            return _as_factor(self.evaluate(args["x"]), _deparse(node))
        if function == "poly":
            args = self.arguments(node, ("x", "degree", "raw"))
            x = self.evaluate(args["x"])
            if not (isinstance(x, np.ndarray) and x.ndim == 1 and x.dtype != bool):
                raise self.fail(node, "poly() takes one numeric variable (several variables are not supported)")
            degree = self.constant(args["degree"], node, "degree") if "degree" in args else 1.0
            raw = bool(self.constant(args["raw"], node, "raw")) if "raw" in args else False
            return _poly(x.astype(float), degree, raw, node, self)
        if function == "scale":
            args = self.arguments(node, ("x", "center", "scale"))
            x = self.numeric(self.evaluate(args["x"]), node)
            center = bool(self.constant(args["center"], node, "center")) if "center" in args else True
            spread = bool(self.constant(args["scale"], node, "scale")) if "scale" in args else True
            return _Matrix(_scale(np.broadcast_to(x, (self.n,)).astype(float), center, spread)[:, None], None)
        if function == "log":
            args = self.arguments(node, ("x", "base"))
            x = self.numeric(self.evaluate(args["x"]), node)
            with np.errstate(divide="ignore", invalid="ignore"):
                result = np.log(x)
                if "base" in args:
                    result = result / np.log(float(self.constant(args["base"], node, "base")))
            return result
        args = self.arguments(node, ("x",))
        x = self.numeric(self.evaluate(args["x"]), node)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return {"log2": np.log2, "log10": np.log10, "log1p": np.log1p, "exp": np.exp, "sqrt": np.sqrt,
                    "abs": np.abs}[function](x)


def _poly(x: np.ndarray, degree: float, raw: bool, node: _Call, evaluator: _Evaluator) -> _Matrix:
    """``stats::poly(x, degree, raw)``: orthonormal columns from the QR of the centred Vandermonde."""
    if degree != int(degree) or degree < 1:
        raise evaluator.fail(node, "'degree' must be a whole number of at least 1")
    degree = int(degree)
    if np.isnan(x).any():
        raise evaluator.fail(node, "missing values are not allowed in 'poly' (as R)")
    names = tuple(str(j) for j in range(1, degree + 1))
    if raw:
        return _Matrix(np.column_stack([x**j for j in range(1, degree + 1)]), names)
    if degree >= np.unique(x).shape[0]:
        raise evaluator.fail(node, "'degree' must be less than number of unique points (as R)")
    centred = x - x.mean()
    vandermonde = np.vander(centred, degree + 1, increasing=True)
    q, r = np.linalg.qr(vandermonde)
    z = q * np.diag(r)  # qr.qy(QR, diag(R)): sign-free, as R
    z = z / np.sqrt((z**2).sum(axis=0))
    return _Matrix(z[:, 1:], names)


def _scale(x: np.ndarray, center: bool, spread: bool) -> np.ndarray:
    """``scale(x)``: centre by the mean, divide by sqrt(Σx²/(n − 1)), NAs ignored (as R)."""
    present = ~np.isnan(x)
    if center:
        x = x - x[present].mean()
    if spread:
        count = max(int(present.sum()) - 1, 1)
        x = x / math.sqrt(float(np.sum(x[present] ** 2)) / count)
    return x


# ---------------------------------------------------------------- model matrix (R's modelmatrix)

def _term_codes(terms: list[frozenset[int]]) -> list[dict[int, bool]]:
    """R's TermCode: for each term and variable, True = contrasts, False = one column per level.

    A variable gets contrasts when the term without it is empty or contained in an earlier term.
    """
    out = []
    for position, term in enumerate(terms):
        codes = {}
        for variable in term:
            rest = term - {variable}
            codes[variable] = not rest or any(rest <= earlier for earlier in terms[:position])
        out.append(codes)
    return out


def _columns(value: object, label: str, contrasts: bool) -> list[tuple[str, np.ndarray]]:
    if isinstance(value, _Factor):
        levels = value.levels[1:] if contrasts else value.levels
        start = 1 if contrasts else 0
        return [(label + level, (value.codes == code).astype(float))
                for code, level in enumerate(levels, start=start)]
    if isinstance(value, _Matrix):
        k = value.values.shape[1]
        if k == 1 and value.colnames is None:
            return [(label, value.values[:, 0])]
        names = value.colnames or tuple(str(j) for j in range(1, k + 1))
        return [(label + name, value.values[:, j]) for j, name in enumerate(names)]
    return [(label, np.asarray(value, dtype=float))]


def _prepare(value: object, n: int, rows: np.ndarray | None, label: str, where: str):
    """Bring a variable to n rows (the kept ones), factors with R's levels (unused levels dropped)."""
    if isinstance(value, (bool, float, int)) and not isinstance(value, np.ndarray):
        value = np.full(n if rows is None else len(rows), float(value))
        return value
    if isinstance(value, str):
        raise ValueError(f"term {label!r} in {where!r} is a string constant. {SUPPORTED_FORMULA}")
    if isinstance(value, _Factor):
        factor = _Factor(value.codes if rows is None else value.codes[rows], value.levels)
        if (factor.codes < 0).any():
            raise ValueError(f"missing values in {label!r} ({int((factor.codes < 0).sum())} rows) of {where!r}; "
                             "drop incomplete rows first (R's na.omit)")
        return _as_factor(factor, label)
    if isinstance(value, np.ndarray) and value.dtype == bool:
        value = value if rows is None else value[rows]
        # a logical variable is a factor with levels FALSE, TRUE (model.matrix)
        return _Factor(value.astype(int), ("FALSE", "TRUE"))
    if isinstance(value, _Matrix):
        values = value.values if rows is None else value.values[rows]
        if np.isnan(values).any():
            raise ValueError(f"missing or undefined values in {label!r} of {where!r}; drop those rows first")
        return _Matrix(values, value.colnames)
    values = np.asarray(value, dtype=float)
    values = values if rows is None else values[rows]
    if np.isnan(values).any():
        raise ValueError(f"missing or undefined (NaN) values in {label!r} ({int(np.isnan(values).sum())} rows) of "
                         f"{where!r}; R's model.frame would drop those rows (na.omit): drop them first")
    return values


def _model_matrix(rhs: str, frame: pd.DataFrame, intercept_default: bool,
                  rows: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    terms = _Terms(rhs, intercept_default)
    evaluator = _Evaluator(frame, rhs)
    n = len(frame) if rows is None else len(rows)
    values = [_prepare(evaluator.evaluate(node), len(frame), rows, label, rhs)
              for node, label in zip(terms.variables, terms.labels, strict=True)]
    codes = _term_codes(terms.terms)
    if not terms.intercept:
        # model.matrix: without an intercept the first factor of the first term holding one gets all levels
        for term_codes in codes:
            factors = sorted(v for v in term_codes if isinstance(values[v], _Factor))
            if factors:
                term_codes[factors[0]] = False
                break
    names: list[str] = []
    columns: list[np.ndarray] = []
    if terms.intercept:
        names.append("(Intercept)")
        columns.append(np.ones(n))
    for term, term_codes in zip(terms.terms, codes, strict=True):
        current: list[tuple[str, np.ndarray]] = [("", np.ones(n))]
        for variable in sorted(term):
            pieces = _columns(values[variable], terms.labels[variable], term_codes[variable])
            current = [(f"{a}:{b}" if a else b, x * y) for b, y in pieces for a, x in current]
        names.extend(name for name, _ in current)
        columns.extend(column for _, column in current)
    matrix = np.column_stack(columns) if columns else np.empty((n, 0))
    return matrix, names


def _dqrdc2_keep(matrix: np.ndarray, tolerance: float = RANK_TOLERANCE) -> np.ndarray:
    """Indices of the columns R's ``qr(X, tol)`` (LINPACK dqrdc2) keeps, in pivoted order.

    dqrdc2 moves a column to the end when its norm, after the Householder steps so far, has fallen
    below ``tolerance`` times its original norm; the first ``rank`` pivots are the columns kept.
    """
    x = np.array(matrix, dtype=float, copy=True)
    n, p = x.shape
    pivot = list(range(p))
    qraux = np.sqrt((x**2).sum(axis=0))
    work1 = qraux.copy()
    work2 = np.where(qraux == 0, 1.0, qraux)
    k = p + 1  # one past the last non-negligible column (1-based, as the Fortran)
    for col in range(min(n, p)):
        lcol = col + 1
        while lcol < k and qraux[col] < work2[col] * tolerance:
            order = list(range(col)) + list(range(col + 1, p)) + [col]
            x = x[:, order]
            pivot = [pivot[i] for i in order]
            qraux, work1, work2 = qraux[order], work1[order], work2[order]
            k -= 1
        if lcol == n:
            break
        norm = np.linalg.norm(x[col:, col])
        if norm == 0:
            continue
        if x[col, col] != 0:
            norm = math.copysign(norm, x[col, col])
        x[col:, col] /= norm
        x[col, col] += 1.0
        if col + 1 < p:
            rest = slice(col + 1, p)
            t = -(x[col:, col] @ x[col:, rest]) / x[col, col]
            x[col:, rest] += np.outer(x[col:, col], t)
            for j in range(col + 1, p):  # downdate the column norms (dqrdc2, with Bates's 1999 fix)
                if qraux[j] != 0:
                    tt = max(1.0 - (abs(x[col, j]) / qraux[j]) ** 2, 0.0)
                    if abs(tt) < 1e-6:
                        qraux[j] = np.linalg.norm(x[col + 1:, j])
                        work1[j] = qraux[j]
                    else:
                        qraux[j] *= math.sqrt(tt)
        qraux[col] = x[col, col]
        x[col, col] = -norm
    rank = min(k - 1, n)
    return np.array(pivot[:rank], dtype=int)


def rank_deficiency_note(dropped: tuple[str, ...] | list[str]) -> str:
    """lme4's message for dropped fixed-effect columns, with their names."""
    count = len(dropped)
    plural = "s" if count > 1 else ""
    return (f"fixed-effect model matrix is rank deficient so dropping {count} column{plural} / "
            f"coefficient{plural}: {', '.join(dropped)}")


def _design(rhs: str, frame: pd.DataFrame, *, intercept_default: bool = True, drop_rank_deficient: bool = True,
            rows: np.ndarray | None = None) -> RDesign:
    """:func:`design` with the variables evaluated on all of ``frame`` and then ``rows`` kept.

    That is R's order (model.frame evaluates ``poly``/``scale`` on the whole data, then na.omit).
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(frame).__name__}")
    matrix, names = _model_matrix(rhs, frame, intercept_default, rows)
    dropped: tuple[str, ...] = ()
    if drop_rank_deficient and matrix.shape[1] > 0:
        keep = _dqrdc2_keep(matrix)
        if len(keep) < matrix.shape[1]:
            removed = sorted(set(range(matrix.shape[1])) - set(keep.tolist()))
            dropped = tuple(names[j] for j in removed)
            matrix = matrix[:, keep]
            names = [names[j] for j in keep]
    return RDesign(matrix=np.ascontiguousarray(matrix, dtype=float), names=tuple(names), dropped=dropped)


def design(rhs: str, frame: pd.DataFrame, *, intercept_default: bool = True,
           drop_rank_deficient: bool = True) -> RDesign:
    """R's ``model.matrix(~ rhs, frame)``, with lme4's dropping of rank-deficient columns.

    Parameters
    ----------
    rhs : str
        Right-hand side without random-effects terms, e.g. ``"1 + week * arm + I(age^2)"``.
    frame : DataFrame
        The data; every row is used (drop incomplete rows first, as ``na.omit``).
    intercept_default : bool, default True
        Whether the model has an intercept when ``rhs`` says neither ``1`` nor ``0``/``-1``.
    drop_rank_deficient : bool, default True
        Drop columns as ``lme4:::chkRank.drop.cols`` (pivoted QR, tolerance 1e-7).

    Returns
    -------
    RDesign
        ``matrix``, R's column ``names`` and the ``dropped`` column names.

    Raises
    ------
    ValueError
        For a term outside the supported grammar (naming it), a missing column, or missing values.

    Examples
    --------
    >>> import pandas as pd
    >>> from alliance.stats._r_formula import design
    >>> built = design("I(week^2) + arm", pd.DataFrame({"week": [0, 1, 2, 3], "arm": list("abab")}))
    >>> built.names
    ('(Intercept)', 'I(week^2)', 'armb')
    >>> built.matrix[:, 1].tolist()
    [0.0, 1.0, 4.0, 9.0]
    """
    return _design(rhs, frame, intercept_default=intercept_default, drop_rank_deficient=drop_rank_deficient)


def response(lhs: str, frame: pd.DataFrame) -> np.ndarray:
    """The response of a formula, a column or an expression such as ``log(y)``, as floats.

    Raises
    ------
    ValueError
        If ``lhs`` is not one numeric variable (a factor, a matrix, a string).
    """
    return _response(lhs, frame, None)


def _response(lhs: str, frame: pd.DataFrame, rows: np.ndarray | None) -> np.ndarray:
    value = _Evaluator(frame, lhs).evaluate(_parse(lhs))
    if isinstance(value, (_Factor, _Matrix, str)):
        kind = "factor" if isinstance(value, _Factor) else "matrix or string"
        raise ValueError(f"the response {lhs!r} must be one numeric variable; it is a {kind}")
    values = np.broadcast_to(np.asarray(value, dtype=float), (len(frame),)).copy()
    return values if rows is None else values[rows]
