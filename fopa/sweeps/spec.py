"""Sweep specifications: an experiment function, a grid of its parameters, seeds.

A spec is a TOML file (or the same as a dict)::

    name = "scale-speed"                  # optional; default: the file's stem
    experiment = "pga"                    # a built-in cell or "package.module:function"
    seeds = { count = 20, start = 0 }     # or a list: seeds = [0, 1, 2]

    [fixed]                               # parameters shared by every cell
    d = 10
    m = 50

    [grid]                                # the Cartesian product of these lists
    scale = [0.01, 0.1, 1.0]
    step_policy = ["fixed", "relative", "lipschitz"]

Cells are the product of the grid's lists in the order written, with the seeds
innermost. Everything is checked when the spec is built, before any work: the
experiment must exist and take a ``seed`` keyword, every parameter must be one
of its keywords with a value of the annotated type, required parameters must be
given, lists must be non-empty and free of repeats, and a built-in experiment
also checks its values (unknown activations, negative sizes, ...).

Nothing is materialized: a seeds table is a ``range``, the cells are counted
from the lists' lengths and produced one at a time (:meth:`SweepSpec.iter_cells`,
:meth:`SweepSpec.cell` by index), so a billion cells cost no memory and no time
before the first one runs. The experiment's ``check`` runs on every combination
of the grid when there are at most :data:`EAGER_CHECKS`; beyond, on a set of
combinations in which every value of every list appears, and on each cell again
just before it runs (:func:`fopa.sweeps.run_cell`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import itertools
import json
import math
import os
import sys
from dataclasses import dataclass

__all__ = ["BUILTIN_EXPERIMENTS", "Cell", "SweepSpec", "load_spec", "resolve_experiment"]

#: Built-in cell functions, by the name a spec uses (see :mod:`fopa.sweeps.cells`).
BUILTIN_EXPERIMENTS = {
    "pga": "fopa.sweeps.cells:pga",
    "landscape": "fopa.sweeps.cells:landscape",
    "training": "fopa.sweeps.cells:training",
}

_TOP_LEVEL = ("name", "description", "experiment", "seeds", "fixed", "grid")
_MAX_SEED = 2**63 - 1


def canonical_json(value) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def resolve_experiment(reference):
    """The cell function named by ``reference`` (a built-in name or ``"module:function"``).

    Raises
    ------
    ValueError
        If the name is unknown, the module or function does not exist, or the
        function does not take a ``seed`` keyword.
    """
    if not isinstance(reference, str) or not reference:
        raise TypeError(f"experiment must be a non-empty string; got {reference!r}")
    target = BUILTIN_EXPERIMENTS.get(reference, reference)
    if ":" not in target:
        raise ValueError(
            f"unknown experiment {reference!r}; expected one of "
            f"{', '.join(BUILTIN_EXPERIMENTS)} or 'package.module:function'"
        )
    module_name, _, func_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"experiment {reference!r}: cannot import {module_name!r} ({exc})"
        ) from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ValueError(f"experiment {reference!r}: {module_name!r} has no function {func_name!r}")
    if "seed" not in _parameters(func):
        raise ValueError(f"experiment {reference!r} must take a 'seed' keyword argument")
    return func


def _parameters(func):
    """{name: (annotation or None, default or inspect.Parameter.empty)} of a cell function."""
    try:
        sig = inspect.signature(func, eval_str=True)
    except (NameError, TypeError):
        sig = inspect.signature(func)
    out = {}
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        annotation = None if p.annotation is p.empty else p.annotation
        out[p.name] = (annotation, p.default)
    return out


def _json_scalar(value):
    return isinstance(value, (str, bool, int)) or (
        isinstance(value, float) and math.isfinite(value)
    )


def _coerce(where, value, annotation):
    """``value`` checked against a cell parameter's annotation (int, float, str, bool)."""
    if annotation is bool:
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        expected = "an integer"
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
            expected = "a finite number"
        else:
            expected = "a number"
    elif annotation is str:
        if isinstance(value, str):
            return value
        expected = "a string"
    else:
        if _json_scalar(value):
            return value
        expected = "a string, number or boolean"
    raise TypeError(f"{where} must be {expected}; got {value!r} ({type(value).__name__})")


#: The most cells a sweep may have: a cell's index is a SQLite integer.
MAX_CELLS = 2**63 - 1
#: Up to this many combinations of the grid, ``check`` runs on every one when the
#: spec is built (beyond, on a covering set; every cell is checked again as it runs).
EAGER_CHECKS = 100_000
#: Up to this many seeds a seeds table enters the spec's fingerprint and stored form
#: as the list of its seeds (what fopa always did, so older stores keep opening);
#: beyond (never possible before), as the table itself.
LISTED_SEEDS = 10_000_000


def _too_many(cells):
    return ValueError(
        f"the sweep has {cells:,} cells; a store indexes at most {MAX_CELLS:,} "
        "(2**63 - 1): split it into several sweeps"
    )


def _seeds(value):
    """A seeds list (a tuple, validated) or table (a ``range``: never materialized)."""
    if value is None:
        raise ValueError("seeds is required: a list of integers or {count = N, start = S}")
    if isinstance(value, dict):
        unknown = set(value) - {"count", "start"}
        if unknown:
            raise ValueError(f"seeds table takes 'count' and 'start'; got {sorted(unknown)}")
        count = _coerce("seeds.count", value.get("count"), int)
        start = _coerce("seeds.start", value.get("start", 0), int)
        if count < 1:
            raise ValueError(f"seeds.count must be >= 1; got {count}")
        if start < 0 or start + count - 1 > _MAX_SEED:
            raise ValueError(
                f"seeds must be integers in [0, 2**63 - 1]; got start = {start}, count = {count}"
            )
        return range(start, start + count)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"seeds must be a list of integers or a table; got {value!r}")
    if not value:
        raise ValueError("seeds is empty: the sweep would have no cells")
    seeds = [_coerce(f"seeds[{k}]", s, int) for k, s in enumerate(value)]
    if any(s < 0 or s > _MAX_SEED for s in seeds):
        raise ValueError(f"seeds must be integers in [0, 2**63 - 1]; got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds has repeated values: {seeds}")
    return tuple(seeds)


def _seeds_form(seeds):
    """How seeds enter the stored spec and the fingerprint: a list (every list, and a
    table of at most :data:`LISTED_SEEDS`: the form fopa always wrote) or the table."""
    if isinstance(seeds, range) and len(seeds) > LISTED_SEEDS:
        return {"count": len(seeds), "start": seeds.start}
    return list(seeds)


def _covering(grid):
    """Combinations of the grid in which every value of every list appears: the k-th
    takes value ``k mod len`` of each list (as many as the longest list)."""
    names = [k for k, _ in grid]
    longest = max((len(v) for _, v in grid), default=1)
    for k in range(longest):
        yield dict(zip(names, (v[k % len(v)] for _, v in grid), strict=True))


@dataclass(frozen=True)
class Cell:
    """One unit of work: an experiment's parameters and a seed.

    ``index`` is its position in the spec's order; ``key`` a SHA-256 of the
    experiment, parameters and seed (what the store identifies it by).
    """

    index: int
    key: str
    params: dict
    seed: int


@dataclass(frozen=True, eq=False)
class SweepSpec:
    """A validated sweep: build with :meth:`from_dict` or :func:`load_spec`.

    Attributes
    ----------
    name, description : str
    experiment : str
        A built-in name (``"pga"``, ``"landscape"``, ``"training"``) or ``"module:function"``.
    fixed : dict
        Parameters shared by every cell (coerced to the annotated types).
    grid : tuple of (name, tuple of values)
        The swept parameters, in the spec's order.
    seeds : tuple of int
    """

    name: str
    experiment: str
    fixed: dict
    grid: tuple
    seeds: tuple
    description: str = ""

    @classmethod
    def from_dict(cls, data, *, name=None) -> SweepSpec:
        """Validate a spec given as a dict (the parsed TOML); see the module docstring."""
        if not isinstance(data, dict):
            raise TypeError(f"a sweep spec must be a table/dict; got {type(data).__name__}")
        unknown = [k for k in data if k not in _TOP_LEVEL]
        if unknown:
            raise ValueError(f"unknown spec key(s) {unknown}; a spec has {', '.join(_TOP_LEVEL)}")
        experiment = data.get("experiment")
        if experiment is None:
            raise ValueError('experiment is required (e.g. experiment = "pga")')
        func = resolve_experiment(experiment)
        params = _parameters(func)
        params.pop("seed")
        fixed_in = data.get("fixed", {})
        grid_in = data.get("grid", {})
        for label, table in (("fixed", fixed_in), ("grid", grid_in)):
            if not isinstance(table, dict):
                raise TypeError(f"[{label}] must be a table; got {table!r}")
        if "grid" in data and not grid_in:
            raise ValueError("[grid] is empty: give each swept parameter a list of values")
        for key in list(fixed_in) + list(grid_in):
            if key == "seed":
                raise ValueError("'seed' is not a parameter: use the top-level 'seeds'")
            if key not in params:
                raise ValueError(
                    f"unknown parameter {key!r} for experiment {experiment!r}; "
                    f"expected one of {', '.join(sorted(params))}"
                )
        both = sorted(set(fixed_in) & set(grid_in))
        if both:
            raise ValueError(f"parameter(s) {both} are both fixed and swept")
        fixed = {k: _coerce(f"fixed.{k}", v, params[k][0]) for k, v in fixed_in.items()}
        grid = []
        for key, values in grid_in.items():
            if not isinstance(values, list):
                raise TypeError(f"grid.{key} must be a list of values; got {values!r}")
            if not values:
                raise ValueError(f"grid.{key} is empty: the sweep would have no cells")
            coerced = [_coerce(f"grid.{key}[{i}]", v, params[key][0]) for i, v in enumerate(values)]
            if len({canonical_json(v) for v in coerced}) != len(coerced):
                raise ValueError(f"grid.{key} has repeated values: {values}")
            grid.append((key, tuple(coerced)))
        missing = [
            k for k, (_, default) in params.items()
            if default is inspect.Parameter.empty and k not in fixed and k not in grid_in
        ]  # fmt: skip
        if missing:
            raise ValueError(f"experiment {experiment!r} needs parameter(s) {missing}")
        spec_name = data.get("name", name if name is not None else experiment)
        if not isinstance(spec_name, str) or not spec_name:
            raise TypeError(f"name must be a non-empty string; got {spec_name!r}")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise TypeError(f"description must be a string; got {description!r}")
        seeds = _seeds(data.get("seeds"))
        spec = cls(spec_name, experiment, fixed, tuple(grid), seeds, description)
        if spec.n_cells > MAX_CELLS:
            raise _too_many(spec.n_cells)
        check = getattr(func, "check", None)
        if check is not None:
            combos = math.prod(len(v) for _, v in grid)
            every = spec._combinations() if combos <= EAGER_CHECKS else _covering(grid)
            for combo in every:
                try:
                    check(spec._resolved(combo, params))
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"cell {combo}: {exc}") from None
        return spec

    @classmethod
    def from_stored(cls, data) -> SweepSpec:
        """The spec as a store recorded it (already validated when it was created;
        the experiment is not imported, so a store can be read without it)."""
        seeds = data["seeds"]
        if isinstance(seeds, dict):
            seeds = range(seeds["start"], seeds["start"] + seeds["count"])
        elif seeds == list(range(seeds[0], seeds[0] + len(seeds))):
            seeds = range(seeds[0], seeds[0] + len(seeds))  # same cells, no list held
        else:
            seeds = tuple(seeds)
        return cls(
            data["name"], data["experiment"], dict(data["fixed"]),
            tuple((k, tuple(v)) for k, v in data["grid"].items()), seeds,
            data.get("description", ""),
        )  # fmt: skip

    def _combinations(self):
        names = [k for k, _ in self.grid]
        for values in itertools.product(*(v for _, v in self.grid)):
            yield dict(zip(names, values, strict=True))

    def _resolved(self, combo, params):
        out = {
            k: default
            for k, (_, default) in params.items()
            if default is not inspect.Parameter.empty
        }
        out.update(self.fixed)
        out.update(combo)
        return out

    def to_dict(self) -> dict:
        """The spec as a TOML-shaped dict (what :meth:`from_dict` takes back)."""
        return dict(
            name=self.name, description=self.description, experiment=self.experiment,
            seeds=_seeds_form(self.seeds), fixed=dict(self.fixed),
            grid={k: list(v) for k, v in self.grid},
        )  # fmt: skip

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of everything that defines the cells (not the description)."""
        body = self.to_dict()
        body.pop("description")
        body["grid"] = [[k, list(v)] for k, v in self.grid]  # the order defines the cells
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()

    @property
    def n_cells(self) -> int:
        return math.prod(len(v) for _, v in self.grid) * len(self.seeds)

    def _cell_parameters(self):
        params = _parameters(resolve_experiment(self.experiment))
        params.pop("seed")
        return params

    def _make(self, index, resolved, seed):
        body = canonical_json(dict(experiment=self.experiment, params=resolved, seed=seed))
        return Cell(index, hashlib.sha256(body.encode()).hexdigest(), dict(resolved), seed)

    def iter_cells(self, skip=()):
        """Every cell in order (the grid's product with the seeds innermost), one at a
        time; indices in ``skip`` (a set, say the finished cells) are passed over
        without being built.

        ``params`` holds every parameter of the experiment (defaults filled in),
        so a stored cell says exactly what ran.
        """
        params = self._cell_parameters()
        index = 0
        n_seeds = len(self.seeds)
        for combo in self._combinations():
            if skip and all(i in skip for i in range(index, index + n_seeds)):
                index += n_seeds  # a finished block: not even its parameters resolved
                continue
            resolved = self._resolved(combo, params)
            for seed in self.seeds:
                if index not in skip:
                    yield self._make(index, resolved, seed)
                index += 1

    def cell(self, index) -> Cell:
        """The cell at ``index`` (what :meth:`iter_cells` yields there), without the
        ones before it."""
        (cell,) = self.cells_at([index])
        return cell

    def cells_at(self, indices):
        """The cells at ``indices`` (an iterable of ints), one at a time, each built
        from its index alone (mixed radix over the lists' lengths, seeds last)."""
        params = self._cell_parameters()
        for index in indices:
            if not 0 <= index < self.n_cells:
                raise IndexError(f"cell index {index} is outside [0, {self.n_cells})")
            position, seed_at = divmod(index, len(self.seeds))
            combo = {}
            for name, values in reversed(self.grid):  # the last list varies fastest
                position, at = divmod(position, len(values))
                combo[name] = values[at]
            combo = {name: combo[name] for name, _ in self.grid}
            yield self._make(index, self._resolved(combo, params), self.seeds[seed_at])

    def cells(self) -> list[Cell]:
        """Every cell as a list (:meth:`iter_cells` one at a time), for sweeps of at
        most 10,000,000 cells."""
        if self.n_cells > 10_000_000:
            raise ValueError(
                f"the sweep has {self.n_cells:,} cells, too many for a list: use iter_cells()"
            )
        return list(self.iter_cells())

    @property
    def swept(self) -> tuple:
        """Names of the parameters with more than one value."""
        return tuple(k for k, v in self.grid if len(v) > 1)


def load_spec(path) -> SweepSpec:
    """Read and validate a TOML sweep spec (``name`` defaults to the file's stem).

    A user experiment (``"module:function"``) may live next to the spec: the
    spec's directory is appended to the end of ``sys.path`` (after the standard
    library and installed packages, so a file there never shadows them), and
    local worker processes inherit it. A spec is code to be trusted like a script.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ValueError(f"sweep spec {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"sweep spec {path!r} is not valid TOML: {exc}") from None
    stem = os.path.splitext(os.path.basename(path))[0]
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.append(directory)
    return SweepSpec.from_dict(data, name=stem)
