"""Hyperparameter search with optuna: fit on train, score on valid, keep the best.

A search space maps a model's hyperparameter names to specs. The canonical forms:

- ``("float", low, high)`` -- uniform float in ``[low, high]``;
- ``("float_log", low, high)`` -- log-uniform float (``0 < low < high``);
- ``("int", low, high)`` -- uniform int in ``[low, high]``;
- ``("int_log", low, high)`` -- log-uniform int (``1 <= low < high``);
- ``("categorical", [choice, ...])`` -- one of the choices (str, int, float, bool or None).

The spellings people write are accepted too and read as these: ``"log"``,
``"loguniform"`` / ``"log_uniform"``, ``"uniform"`` and ``"range"`` (int or float after
the parameter's type), ``"log_float"``, ``"log_int"``, ``"integer"``, ``"choice"``;
a trailing ``"log"`` (``("float", 10, 5000, "log")``); dashes or spaces for
underscores; and optuna's keyword form, a table such as
``{type = "float", low = 10, high = 5000, log = true}`` or ``{choices = [...]}``.

Any spec may end with a condition, a dict ``{other_param: value or [values]}`` (in
the keyword form: ``when = {...}``): the parameter is then sampled only in trials
where each named parameter (sampled earlier in the space, or fixed) has one of those
values, and otherwise left at the model's default. ``("float", 0.0, 100.0,
{"similarity": "cosine"})`` tunes a cosine-only shrinkage without producing invalid
bm25 + shrinkage combinations.

The built-in space of a model is declared on its config, as metadata of each
searched field (``Field(..., json_schema_extra=search("float_log", 10.0, 5000.0))``),
in field order; :func:`search_space` reads it. A model that declares none gets an
error listing its hyperparameters, to write a space for. Users may pass their own
space, as a dict or as a TOML/JSON file (lists stand in for tuples)::

    # space.toml
    l2 = ["log", 10, 5000]                                  # same as ["float_log", 10.0, 5000.0]
    similarity = ["categorical", ["cosine", "bm25"]]
    shrinkage = ["float", 0, 100, {similarity = "cosine"}]

The ``grid`` sampler enumerates a grid built from the space: categorical choices as
they are; ``int``/``float`` ranges as :data:`GRID_POINTS` evenly spaced points and
``*_log`` ranges as :data:`GRID_POINTS` log-spaced points (ints rounded, duplicates
dropped). It visits grid points in a seeded random order and stops after
``n_trials`` trials or when the grid is exhausted, whichever comes first. (The grid
is a full product, so points that differ only in a parameter whose condition does
not hold repeat the same model.)

Requires the ``tune`` extra (optuna). Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from lmrec._atomic import atomic_file
from lmrec._checks import check_int
from lmrec._config_files import read_config_file
from lmrec._optional import require
from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError

#: A search-space spec: ``(kind, low, high)`` or ``("categorical", choices)``.
Spec = tuple[Any, ...]
#: Parameter name -> spec.
SearchSpace = dict[str, Spec]

#: Points per numeric dimension of the ``grid`` sampler's grid.
GRID_POINTS = 4

_RANGE_KINDS = ("float", "float_log", "int", "int_log")
_SAMPLERS = ("tpe", "random", "grid")
#: Metrics where lower is better (everything else is maximised).
_MINIMISE = ("gini", "rmse", "mae", "log_loss")

#: Spellings of a spec's kind -> canonical kind; "log", "uniform" and "range" become
#: the int or float variant after the parameter's type.
KIND_ALIASES: dict[str, str] = {
    "float": "float",
    "real": "float",
    "float_log": "float_log",
    "log_float": "float_log",
    "logfloat": "float_log",
    "loguniform": "float_log",
    "log_uniform": "float_log",
    "int": "int",
    "integer": "int",
    "int_log": "int_log",
    "log_int": "int_log",
    "logint": "int_log",
    "integer_log": "int_log",
    "categorical": "categorical",
    "choice": "categorical",
    "choices": "categorical",
    "cat": "categorical",
    "log": "log",
    "uniform": "uniform",
    "range": "uniform",
}


# ---------------------------------------------------------------------- spaces
def load_space(path: str | Path) -> SearchSpace:
    """Read a search space from a ``.toml`` or ``.json`` file (lists in place of tuples).

    Raises
    ------
    ConfigError
        The file cannot be read or parsed, or is not a table of specs.
    """
    path = Path(path)
    if path.suffix.lower() not in (".toml", ".json"):
        raise ConfigError(f"A search space file must end in .toml or .json; got {path}.")
    return read_config_file(path, "Search space file")


_SPEC_FORMS = (
    "write [kind, low, high] with kind float, float_log, int, int_log (or log, uniform), "
    '["categorical", [choices]], or a table {type, low, high, log} / {choices}'
)
_KEYWORDS = ("type", "kind", "distribution", "low", "high", "log", "choices", "values", "when")


def _is_int_field(field: Any) -> bool:
    """Whether a config field holds an int (``int`` or ``int | None``)."""
    if field is None:
        return False
    annotation = field.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return annotation is int or (bool(args) and all(a is int for a in args))


def _from_keywords(where: str, spec: Mapping[Any, Any]) -> list[Any]:
    """optuna's keyword form ``{type, low, high, log}`` / ``{choices}`` as a list spec."""
    keys = {str(k).strip().lower(): v for k, v in spec.items()}
    unknown = sorted(set(keys) - set(_KEYWORDS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown}; a table spec takes {', '.join(_KEYWORDS)}."
        )
    cond = keys.get("when")
    if "choices" in keys or "values" in keys:
        out: list[Any] = ["categorical", keys.get("choices", keys.get("values"))]
    else:
        if "low" not in keys or "high" not in keys:
            raise ConfigError(f"{where}: a table spec needs low and high (or choices).")
        kind = keys.get("type", keys.get("kind", keys.get("distribution", "uniform")))
        out = [kind, keys["low"], keys["high"]] + (["log"] if keys.get("log") else [])
    return out + ([cond] if cond is not None else [])


def _canonical(where: str, spec: object, field: Any) -> tuple[Any, ...]:
    """Rewrite the accepted spellings of a spec (see the module docstring) canonically."""
    if isinstance(spec, Mapping):
        spec = _from_keywords(where, spec)
    if isinstance(spec, (str, bytes)) or not isinstance(spec, (tuple, list)) or not spec:
        raise ConfigError(f"{where}: {_SPEC_FORMS}. Got {spec!r} instead.")
    parts = list(spec)
    cond = parts.pop() if len(parts) > 1 and isinstance(parts[-1], Mapping) else None
    log = len(parts) > 1 and isinstance(parts[-1], str) and parts[-1].strip().lower() == "log"
    if log:
        parts.pop()
    kind = parts[0]
    if isinstance(kind, str):
        kind = KIND_ALIASES.get(re.sub(r"[\s-]+", "_", kind.strip().lower()), kind)
        if kind in ("log", "uniform"):
            whole = (
                _is_int_field(field)
                if field is not None
                else all(
                    isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in parts[1:]
                )
            )
            kind = ("int" if whole else "float") + ("_log" if kind == "log" else "")
        if log and kind in ("int", "float"):
            kind += "_log"
        elif log and kind not in ("int_log", "float_log"):
            raise ConfigError(f"{where}: a trailing 'log' goes with a numeric range. Got {spec!r}.")
    return (kind, *parts[1:], *([cond] if cond is not None else []))


def _check_spec(model: str, param: str, spec: object, earlier: set[str], field: Any = None) -> Spec:
    """Normalise one spec to a tuple and check its kind, bounds and condition."""
    where = f"Search space of {model!r}, parameter {param!r}"
    spec = _canonical(where, spec, field)
    if len(spec) > 1 and isinstance(spec[-1], Mapping):
        cond = _check_condition(where, spec[-1], earlier)
        return (*_check_spec(model, param, spec[:-1], earlier, field), cond)
    kind = spec[0]
    if kind == "categorical":
        if len(spec) != 2 or not isinstance(spec[1], (list, tuple)) or not spec[1]:
            raise ConfigError(
                f"{where}: write ('categorical', [choice, ...]). Got {spec!r} instead."
            )
        bad = [c for c in spec[1] if c is not None and not isinstance(c, (str, int, float, bool))]
        if bad:
            raise ConfigError(
                f"{where}: choices must be str, int, float, bool or None. Got {bad!r}."
            )
        return ("categorical", list(spec[1]))
    if kind not in _RANGE_KINDS:
        raise ConfigError(
            f"{where}: unknown kind {kind!r}. Valid kinds: categorical, "
            f"{', '.join(_RANGE_KINDS)} (or log, uniform, loguniform, choice)."
        )
    if len(spec) != 3 or not all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in spec[1:]
    ):
        raise ConfigError(
            f"{where}: write ({kind!r}, low, high) with numbers. Got {spec!r} instead."
        )
    low, high = spec[1], spec[2]
    if kind.startswith("int"):
        if int(low) != low or int(high) != high:
            raise ConfigError(f"{where}: int bounds must be whole numbers. Got {spec!r} instead.")
        low, high = int(low), int(high)
    else:
        low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"{where}: needs finite low < high. Got {spec!r} instead.")
    if kind.endswith("_log") and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0. Got {spec!r} instead.")
    return (kind, low, high)


def _check_condition(
    where: str, cond: Mapping[Any, Any], earlier: set[str]
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for other, values in cond.items():
        if other not in earlier:
            raise ConfigError(
                f"{where}: its condition names {other!r}, which is neither a fixed parameter "
                f"nor one sampled before it. Conditions may name: {sorted(earlier) or '(none)'}."
            )
        out[other] = list(values) if isinstance(values, (list, tuple)) else [values]
    if not out:
        raise ConfigError(f"{where}: an empty condition; drop it or name a parameter.")
    return out


def _condition(spec: Spec) -> dict[str, list[Any]] | None:
    return spec[-1] if isinstance(spec[-1], dict) else None


def search_space(model_name: str) -> SearchSpace:
    """The built-in search space of ``model_name``, read from its config's field metadata.

    Each searched field of the model's config carries
    ``json_schema_extra={"search": spec}``; the space lists them in field order (so a
    condition can name a field declared earlier). Empty for a model that declares none.

    >>> search_space("ease")
    {'l2': ('float_log', 10.0, 5000.0)}
    """
    from lmrec.models.registry import get_model_class

    fields = get_model_class(model_name).config_class.model_fields
    space: SearchSpace = {}
    for name, info in fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, Mapping) and "search" in extra:
            spec = extra["search"]
            if not isinstance(spec, list | tuple):
                raise ConfigError(
                    f"{model_name}: the search metadata of {name!r} must be a list (see "
                    f"lmrec.models.config.search); got {spec!r}."
                )
            space[name] = tuple(spec)
    return space


def _describe(field: Any) -> str:
    """A field's type in search-space words: int, float, true/false or its choices."""
    annotation = field.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    for kind in (bool, int, float):
        if annotation is kind or (args and all(a is kind for a in args)):
            return {bool: "true/false", int: "int", float: "float"}[kind]
    return ""


def _no_space_message(model_name: str, fields: Mapping[str, Any]) -> str:
    searchable = [
        f"{name} ({kind}, default {info.get_default(call_default_factory=True)!r})"
        for name, info in fields.items()
        if (kind := _describe(info)) and name not in ("seed", "device", "bf16", "distributed")
    ]
    listed = "; ".join(searchable) or "(none of its parameters is numeric or a choice)"
    return (
        f"Model {model_name!r} declares no built-in search space. Write one (lmrec tune "
        f"--space space.toml, or space={{param: spec}}) over its hyperparameters: {listed}. "
        'Example line: lr = ["float_log", 1e-4, 1e-2]; the format is in lmrec tune --help.'
    )


def resolve_space(
    model_name: str,
    space: Mapping[str, object] | str | Path | None = None,
    fixed_params: Mapping[str, object] | None = None,
) -> SearchSpace:
    """The checked search space for ``model_name`` (default: :func:`search_space`).

    Every parameter (of the space and of ``fixed_params``) must be a field of the
    model's config class; fixed parameters are taken out of the space. Specs are
    rewritten in their canonical form (``"log"`` becomes ``"float_log"`` or
    ``"int_log"`` after the field's type, and so on; see the module docstring).

    Raises
    ------
    ConfigError
        An unknown model or parameter (the message lists the valid ones), a bad spec,
        or no space given for a model without a built-in one (the message lists its
        hyperparameters).
    """
    from lmrec.models.registry import get_model_class

    fields = get_model_class(model_name).config_class.model_fields
    if space is None:
        space = search_space(model_name)
        if not space:
            raise ConfigError(_no_space_message(model_name, fields))
    elif isinstance(space, (str, Path)):
        space = load_space(space)
    if not isinstance(space, Mapping):
        raise ConfigError(f"A search space is a dict of param -> spec; got {type(space).__name__}.")
    fixed = dict(fixed_params or {})
    unknown = sorted(p for p in [*space, *fixed] if p not in fields)
    if unknown:
        raise ConfigError(
            f"Unknown parameter(s) {unknown} for model {model_name!r}. Valid parameters: "
            f"{', '.join(sorted(fields)) or '(none)'}."
        )
    checked: SearchSpace = {}
    for p, s in space.items():
        if p not in fixed:
            checked[p] = _check_spec(model_name, p, s, set(fixed) | set(checked), fields[p])
    return checked


def grid_values(spec: Spec, n_points: int = GRID_POINTS) -> list[Any]:
    """The grid of one spec: categorical choices, or ``n_points`` (log-)spaced points.

    >>> grid_values(("float_log", 1.0, 1000.0))
    [1.0, 10.0, 100.0, 1000.0]
    >>> grid_values(("int", 1, 3))
    [1, 2, 3]
    """
    kind = spec[0]
    if kind == "categorical":
        return list(spec[1])
    low, high = spec[1], spec[2]  # a trailing condition, if any, does not change the grid
    if kind.endswith("_log"):
        points = np.geomspace(low, high, n_points)
    else:
        points = np.linspace(low, high, n_points)
    if kind.startswith("int"):
        return sorted({int(min(max(round(float(p)), low), high)) for p in points})
    return [float(min(max(round(float(p), 12), low), high)) for p in points]


def _sample(trial: Any, space: SearchSpace, fixed: Mapping[str, Any]) -> dict[str, Any]:
    """Suggest each parameter whose condition holds, in space order."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        cond = _condition(spec)
        if cond is not None:
            known = {**fixed, **params}
            if not all(other in known and known[other] in ok for other, ok in cond.items()):
                continue
        params[name] = _suggest(trial, name, spec)
    return params


def _suggest(trial: Any, name: str, spec: Spec) -> Any:
    kind = spec[0]
    if kind == "categorical":
        return trial.suggest_categorical(name, spec[1])
    if kind.startswith("int"):
        return trial.suggest_int(name, spec[1], spec[2], log=kind == "int_log")
    return trial.suggest_float(name, spec[1], spec[2], log=kind == "float_log")


# ---------------------------------------------------------------------- result
@dataclass
class TuneResult:
    """Outcome of :func:`tune`.

    Attributes
    ----------
    model_name, metric : str
        What was tuned, and on which validation metric.
    best_params : dict
        All parameters to build the best model with: the sampled ones, the fixed
        ones, and the seed (when the model has one).
    best_value : float
        The best trial's validation metric.
    trials : DataFrame
        One row per trial: ``number``, one column per sampled parameter, ``value``,
        ``duration_s``, ``state`` (``COMPLETE`` or ``FAIL``) and ``error`` (the
        message of a failed trial).
    """

    model_name: str
    metric: str
    best_params: dict[str, Any]
    best_value: float
    trials: pd.DataFrame
    direction: str = "maximize"
    sampler: str = "tpe"
    seed: int = 0
    space: SearchSpace = field(default_factory=dict)

    def create_model(self) -> Any:
        """A fresh, unfitted model with :attr:`best_params`."""
        from lmrec.models.registry import create_model

        return create_model(self.model_name, self.best_params)

    def refit(self, train: Dataset, valid: Dataset | None = None) -> Any:
        """Fit a fresh model with the best parameters on ``train + valid`` and return it."""
        data = train if valid is None else train.concat(valid)
        return self.create_model().fit(data)

    def save(self, path: str | Path) -> Path:
        """Write ``best_params.json``, ``trials.csv`` and ``study.json`` into directory ``path``.

        Each file is written atomically (temporary file, then rename).
        ``best_params.json`` holds the parameters alone, ready to build the model from.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with atomic_file(path / "best_params.json") as fh:
            json.dump(self.best_params, fh, indent=2, sort_keys=True)
            fh.write("\n")
        with atomic_file(path / "trials.csv", newline="") as fh:
            self.trials.to_csv(fh, index=False)
        meta = {
            "model": self.model_name,
            "metric": self.metric,
            "direction": self.direction,
            "best_value": self.best_value,
            "sampler": self.sampler,
            "seed": self.seed,
            "n_trials": len(self.trials),
            "space": {k: list(v) for k, v in self.space.items()},
        }
        with atomic_file(path / "study.json") as fh:
            json.dump(meta, fh, indent=2)
            fh.write("\n")
        return path


# ---------------------------------------------------------------------- search
def _make_sampler(optuna: Any, sampler: str, space: SearchSpace, seed: int) -> Any:
    if sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    grid = {name: grid_values(spec) for name, spec in space.items()}
    return optuna.samplers.GridSampler(grid, seed=seed)


def tune(
    model_name: str,
    train: Dataset,
    valid: Dataset,
    *,
    metric: str = "ndcg@10",
    n_trials: int = 20,
    sampler: Literal["tpe", "random", "grid"] = "tpe",
    seed: int = 0,
    fixed_params: Mapping[str, Any] | None = None,
    space: Mapping[str, object] | str | Path | None = None,
    timeout: float | None = None,
    show_progress: bool | None = None,
    direction: Literal["maximize", "minimize"] | None = None,
) -> TuneResult:
    """Search hyperparameters of ``model_name``: fit on ``train``, evaluate on ``valid``.

    Each trial builds the model from the sampled parameters plus ``fixed_params``,
    fits it on ``train`` and scores it with
    ``lmrec.eval.protocol.evaluate(model, valid, metrics=[metric])`` (full ranking,
    training items excluded). A trial whose parameters the model rejects
    (:class:`~lmrec.errors.ConfigError`, e.g. an invalid combination) is recorded as
    failed and the search goes on. If the model's config has a ``seed`` field that
    neither the space nor ``fixed_params`` sets, it is set to ``seed``, so the same
    call gives the same trials.

    Parameters
    ----------
    model_name : str
        A registered model name.
    train, valid : Dataset
        Training and validation interactions (splits of one data set).
    metric : str, default "ndcg@10"
        Validation metric (see :func:`lmrec.eval.metrics.parse_metric`).
    n_trials : int, default 20
        Number of trials (the grid sampler may stop earlier when its grid is exhausted).
    sampler : {"tpe", "random", "grid"}, default "tpe"
        Seeded optuna sampler; ``grid`` is described in the module docstring.
    seed : int, default 0
        Seed of the sampler (and of the model, see above).
    fixed_params : dict, optional
        Parameters held fixed in every trial; they override the space.
    space : dict, or path to a .toml/.json file, optional
        Search space in the module's spec format (default: :func:`search_space`).
    timeout : float, optional
        Stop starting new trials after this many seconds.
    show_progress : bool, optional
        Show optuna's progress bar (default: when stderr is a terminal).
    direction : {"maximize", "minimize"}, optional
        Default: minimise gini, rmse, mae and log_loss, maximise everything else.

    Returns
    -------
    TuneResult

    Raises
    ------
    ConfigError
        An unknown model, metric, sampler or parameter, a bad spec or budget, or every
        trial failed.
    MissingExtraError
        optuna is not installed (``pip install 'lmrec[tune]'``).

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> from lmrec.data.split import random_split
    >>> s = random_split(checkerboard(), ratios=(0.6, 0.2, 0.2), seed=0)
    >>> res = tune("popularity", s.train, s.valid, n_trials=2, sampler="grid")
    >>> sorted(res.best_params)
    ['by']
    """
    from lmrec.eval.metrics import parse_metric
    from lmrec.eval.protocol import evaluate
    from lmrec.models.registry import create_model, get_model_class

    if sampler not in _SAMPLERS:
        raise ConfigError(
            f"The 'sampler' parameter of tune must be one of {', '.join(_SAMPLERS)}. "
            f"Got {sampler!r} instead."
        )
    check_int(n_trials, "n_trials", where="tune")
    check_int(seed, "seed", minimum=0, where="tune")
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ConfigError(
            f"The 'timeout' parameter of tune must be a number > 0. Got {timeout!r} instead."
        )
    for part, what in ((train, "train"), (valid, "valid")):
        if not isinstance(part, Dataset):
            raise TypeError(
                f"tune expects an lmrec.data.Dataset as {what}; got {type(part).__name__}."
            )
    parse_metric(metric)  # an unknown metric fails here, before any fitting
    metric_name = metric.strip().lower().replace(" ", "")
    if direction is None:
        direction = "minimize" if metric_name.split("@")[0] in _MINIMISE else "maximize"
    elif direction not in ("maximize", "minimize"):
        raise ConfigError(
            "The 'direction' parameter of tune must be 'maximize' or 'minimize'. "
            f"Got {direction!r} instead."
        )

    checked = resolve_space(model_name, space, fixed_params)
    fixed = dict(fixed_params or {})
    fields = get_model_class(model_name).config_class.model_fields
    if "seed" in fields and "seed" not in fixed and "seed" not in checked:
        fixed["seed"] = int(seed)
    if not checked and sampler == "grid":
        raise ConfigError("The grid sampler needs a non-empty search space.")

    optuna = require("optuna", "tune")

    def objective(trial: Any) -> float:
        params = _sample(trial, checked, fixed)
        start = time.perf_counter()
        try:
            model = create_model(model_name, {**params, **fixed})
            model.fit(train)
            result = evaluate(model, valid, metrics=[metric_name], show_progress=False)
        except ConfigError as e:
            # An invalid combination is a failed trial, not a crash: optuna records a
            # NaN objective as FAIL (with a one-line warning, not a traceback).
            trial.set_user_attr("error", str(e))
            trial.set_user_attr("duration_s", time.perf_counter() - start)
            return float("nan")
        trial.set_user_attr("duration_s", time.perf_counter() - start)
        return float(result.summary[metric_name])

    if show_progress is None:
        show_progress = sys.stderr.isatty()
    old_verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            direction=direction, sampler=_make_sampler(optuna, sampler, checked, int(seed))
        )
        study.optimize(
            objective,
            n_trials=int(n_trials),
            timeout=timeout,
            show_progress_bar=bool(show_progress),
            gc_after_trial=False,
        )
    finally:
        optuna.logging.set_verbosity(old_verbosity)

    trials = _trials_frame(study, list(checked))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        errors = trials["error"].dropna().unique().tolist()
        raise ConfigError(
            f"All {len(trials)} trials of {model_name!r} failed"
            + (f"; first error: {errors[0]}" if errors else ".")
        )
    best = study.best_trial
    return TuneResult(
        model_name=model_name,
        metric=metric_name,
        best_params={**best.params, **fixed},
        best_value=float(best.value),
        trials=trials,
        direction=direction,
        sampler=sampler,
        seed=int(seed),
        space=checked,
    )


def _trials_frame(study: Any, params: list[str]) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        row: dict[str, Any] = {"number": t.number}
        for p in params:
            row[p] = t.params.get(p)
        row["value"] = t.value if t.value is not None else np.nan
        row["duration_s"] = t.user_attrs.get("duration_s", np.nan)
        row["state"] = t.state.name
        row["error"] = t.user_attrs.get("error")
        rows.append(row)
    columns = ["number", *params, "value", "duration_s", "state", "error"]
    return pd.DataFrame(rows, columns=columns)
