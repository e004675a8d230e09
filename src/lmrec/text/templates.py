"""Item and user text built from catalog fields, for the sentence encoder.

A *template* is a :meth:`str.format` string whose fields name columns of the
attribute table, e.g. ``"{title} ({year}). Genres: {genres}"``. Values are rendered
for reading, not for round-tripping:

- a missing value (``None``, ``NaN``, ``pd.NA``) renders as the empty string, and the
  text is then cleaned up: empty brackets ``()`` disappear, a trailing ``Label:`` with
  nothing after it is dropped, and runs of spaces and stray punctuation are collapsed
  (``"Heat (). Genres: "`` becomes ``"Heat."``);
- a ``|``-separated multi-value string (lmrec's convention for genres and tags)
  renders as ``"a, b, c"``;
- an integral float (``1995.0``, how pandas stores a year column with gaps) renders
  as ``"1995"``.

Without a template, a table with ``title`` and ``genres`` columns (MovieLens and
anything shaped like it) uses :data:`MOVIELENS_ITEM_TEMPLATE`; any other table uses
every string column as ``"column: value"`` joined by ``". "``. A row whose text comes
out empty (an id in the interactions but not in the catalog) falls back to its id, so
that such items do not all share one vector.

Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

import math
import re
import string
from typing import Any

import numpy as np
import pandas as pd

from lmrec.errors import ConfigError

__all__ = [
    "MOVIELENS_ITEM_TEMPLATE",
    "MOVIELENS_USER_TEMPLATE",
    "item_texts",
    "render",
    "template_fields",
    "user_texts",
]

#: Default item template for tables with ``title`` and ``genres`` (and usually ``year``).
MOVIELENS_ITEM_TEMPLATE = "{title} ({year}). Genres: {genres}"
#: Default user template for tables with ``age``, ``gender`` and ``occupation``.
MOVIELENS_USER_TEMPLATE = "A {age}-year-old {gender_word} {occupation}."

_GENDER_WORDS = {"m": "man", "male": "man", "f": "woman", "female": "woman"}

_EMPTY_BRACKETS = re.compile(r"\s*(\(\s*\)|\[\s*\])")
# "Genres:" with nothing after it, at the end or before another sentence.
_EMPTY_LABEL = re.compile(r"(^|[.;!?]\s+)[A-Za-z][\w ]{0,30}:\s*(?=[.;]|$)")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_REPEATED_PUNCT = re.compile(r"([.,;:])(\s*[.,;:])+")
_SPACES = re.compile(r"\s+")


def template_fields(template: str) -> list[str]:
    """The field names a template refers to, in order (``"{a} {b:>3}"`` -> ``["a", "b"]``).

    Raises
    ------
    ConfigError
        The template is not a valid format string, or has a positional field ``{}``.
    """
    if not isinstance(template, str):
        raise ConfigError(f"A text template must be a str. Got {type(template).__name__} instead.")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ConfigError(f"Invalid text template {template!r}: {e}.") from e
    fields = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        base = re.split(r"[.\[]", name, maxsplit=1)[0]
        if not base or base.isdigit():
            raise ConfigError(
                f"Text template {template!r} has a positional field {{{name}}}; name a column, "
                "e.g. {title}."
            )
        fields.append(base)
    return fields


def _display(value: Any) -> str:
    """A value as text for the encoder (see the module docstring for the rules)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        return str(int(value)) if float(value).is_integer() else f"{value:g}"
    if isinstance(value, (np.integer, np.bool_)):
        return str(value.item())
    text = str(value).strip()
    if "|" in text:
        text = ", ".join(part.strip() for part in text.split("|") if part.strip())
    return text


def _clean(text: str) -> str:
    """Tidy a rendered text whose missing fields left empty brackets or labels behind."""
    text = _EMPTY_BRACKETS.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _EMPTY_LABEL.sub(r"\1", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _SPACES.sub(" ", text).strip()
    return text.lstrip(".,;: ").rstrip(",;: ")


def render(frame: pd.DataFrame, template: str) -> list[str]:
    """Render ``template`` for every row of ``frame``, in row order.

    Fields name columns of ``frame`` or its index name (``{item}``, ``{id}``).

    Raises
    ------
    ConfigError
        A field names no column (the message lists the available ones), or the
        template does not format (e.g. ``{year:d}`` on a rendered string).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"title": ["Heat", "Up"], "year": [1995, None],
    ...                   "genres": ["Action|Crime", None]})
    >>> render(f, "{title} ({year}). Genres: {genres}")
    ['Heat (1995). Genres: Action, Crime', 'Up.']
    """
    fields = template_fields(template)
    columns = {str(c): c for c in frame.columns}
    index_names = {n for n in (frame.index.name, "id") if isinstance(n, str) and n}
    unknown = [f for f in dict.fromkeys(fields) if f not in columns and f not in index_names]
    if unknown:
        available = ", ".join(sorted(columns) + sorted(index_names - set(columns)))
        raise ConfigError(
            f"Text template {template!r} refers to unknown field(s) "
            f"{', '.join(repr(u) for u in unknown)}. Available: {available or '(none)'}."
        )
    ids = [_display(i) for i in frame.index]
    values = {
        f: ids if f not in columns else [_display(v) for v in frame[columns[f]].tolist()]
        for f in dict.fromkeys(fields)
    }
    out = []
    for row in range(len(frame)):
        try:
            text = template.format_map({f: values[f][row] for f in values})
        except (ValueError, KeyError, IndexError, AttributeError) as e:
            raise ConfigError(f"Text template {template!r} does not format row {row}: {e}.") from e
        out.append(_clean(text))
    return out


def _string_columns(frame: pd.DataFrame) -> list[Any]:
    return [
        c
        for c in frame.columns
        if pd.api.types.is_object_dtype(frame[c])
        or pd.api.types.is_string_dtype(frame[c])
        or isinstance(frame[c].dtype, pd.CategoricalDtype)
    ]


def _generic(frame: pd.DataFrame, what: str) -> list[str]:
    """Every string column as ``"column: value"``, joined by ``". "``; missing values skipped."""
    cols = _string_columns(frame)
    if not cols:
        raise ConfigError(
            f"The {what} table has no string columns to build text from (columns: "
            f"{', '.join(map(str, frame.columns)) or '(none)'}); pass a template such as "
            "'{title}. {description}'."
        )
    rendered = {c: [_display(v) for v in frame[c].tolist()] for c in cols}
    return [
        ". ".join(f"{c}: {rendered[c][row]}" for c in cols if rendered[c][row])
        for row in range(len(frame))
    ]


def _table(data: Any, attr: str, what: str) -> pd.DataFrame:
    from lmrec.data.dataset import Dataset

    if isinstance(data, Dataset):
        table = getattr(data, attr)
        if table is None:
            flag = "--items items.csv" if attr == "items" else "--users users.csv"
            raise ConfigError(
                f"Data set {data.name!r} has no {what} table to build text from: pass {flag} "
                f"(or Dataset.from_frame(..., {attr}=frame))."
            )
        return table
    if isinstance(data, pd.DataFrame):
        return data
    raise TypeError(
        f"Expected an lmrec Dataset or a pandas DataFrame of {what} attributes. "
        f"Got {type(data).__name__} instead."
    )


def _with_id_fallback(frame: pd.DataFrame, texts: list[str]) -> list[str]:
    return [t if t else _display(i) for t, i in zip(texts, frame.index, strict=True)]


def item_texts(data: Any, template: str | None = None) -> list[str]:
    """One text per item, in the data set's item order (or the frame's row order).

    Parameters
    ----------
    data : Dataset or DataFrame
        A data set with an ``items`` table (rows aligned with its item id map,
        catalog-only items included), or an item table indexed by item id.
    template : str, optional
        A format string over the item columns, e.g. ``"{title} ({year}). Genres:
        {genres}"``. Default: :data:`MOVIELENS_ITEM_TEMPLATE` when the table has
        ``title`` and ``genres``, else every string column as ``"column: value"``.

    Returns
    -------
    list of str

    Raises
    ------
    ConfigError
        No item table, an unknown template field, or (without a template) no string
        column.

    Examples
    --------
    >>> import pandas as pd
    >>> items = pd.DataFrame({"title": ["Toy Story"], "year": [1995],
    ...                       "genres": ["Animation|Children's|Comedy"]}, index=["1"])
    >>> item_texts(items)
    ["Toy Story (1995). Genres: Animation, Children's, Comedy"]
    >>> item_texts(items, "{title}")
    ['Toy Story']
    """
    frame = _table(data, "items", "item")
    if template is None:
        if {"title", "genres"} <= set(map(str, frame.columns)):
            tpl = (
                MOVIELENS_ITEM_TEMPLATE if "year" in frame.columns else "{title}. Genres: {genres}"
            )
            return _with_id_fallback(frame, render(frame, tpl))
        return _with_id_fallback(frame, _generic(frame, "item"))
    return _with_id_fallback(frame, render(frame, template))


def user_texts(data: Any, template: str | None = None) -> list[str]:
    """One text per user from user attributes (for cold-start users), in id-map order.

    Fields are the user table's columns plus ``gender_word`` (``"man"``/``"woman"``
    from a ``gender`` column of M/F values; otherwise the value itself). Without a
    template, a table with ``age``, ``gender`` and ``occupation`` uses
    :data:`MOVIELENS_USER_TEMPLATE`; any other uses every string column.

    Examples
    --------
    >>> import pandas as pd
    >>> users = pd.DataFrame({"age": [24], "gender": ["M"], "occupation": ["technician"]},
    ...                      index=["1"])
    >>> user_texts(users)
    ['A 24-year-old man technician.']
    """
    frame = _table(data, "users", "user")
    if "gender" in frame.columns and "gender_word" not in frame.columns:
        words = [
            _GENDER_WORDS.get(_display(g).lower(), _display(g)) for g in frame["gender"].tolist()
        ]
        frame = frame.assign(gender_word=words)
    if template is None:
        if {"age", "gender", "occupation"} <= set(map(str, frame.columns)):
            return _with_id_fallback(frame, render(frame, MOVIELENS_USER_TEMPLATE))
        return _with_id_fallback(
            frame.drop(columns=["gender_word"], errors="ignore"),
            _generic(frame.drop(columns=["gender_word"], errors="ignore"), "user"),
        )
    return _with_id_fallback(frame, render(frame, template))
