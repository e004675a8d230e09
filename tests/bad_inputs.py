"""A catalogue of malformed interaction files and the error each must produce.

Shared by ``tests/test_io.py`` (library: ``read_interactions(path, **read_kwargs)``) and
the CLI tests (``lmrec train --data FILE --model popularity --out DIR *cli_args``). Each
case's ``expected`` text must appear (case-insensitively) in the error message; cases
with ``row=True`` point at one data row, so the message must say ``"row "`` too.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class BadInput(NamedTuple):
    """One malformed file: write ``content`` to ``filename`` and read it with the kwargs."""

    name: str
    filename: str
    content: bytes
    read_kwargs: dict[str, Any]
    cli_args: list[str]
    expected: str
    row: bool = False
    #: The text a Python caller sees where it differs (parameters instead of CLI flags).
    library_expected: str | None = None


_RATING = ({"rating": "rating"}, ["--rating-col", "rating"])
_WEIGHT = ({"weight": "w"}, ["--weight-col", "w"])
_TS = ({"timestamp": "ts"}, ["--timestamp-col", "ts"])

BAD_INPUTS: list[BadInput] = [
    BadInput("empty_file", "empty.csv", b"", {}, [], "empty (0 bytes)"),
    BadInput("header_only", "header.csv", b"user,item,rating\n", {}, [], "no data rows"),
    BadInput("blank_lines_only", "blank.csv", b"\n\n\n", {}, [], "no data"),
    BadInput(
        "missing_user_column",
        "cols.csv",
        b"uid,item\n1,2\n",
        {},
        [],
        "--user-col",
        library_expected="user='NAME'",
    ),
    BadInput(
        "missing_column_near_miss",
        "near.csv",
        b"userId,item\n1,2\n",
        {},
        [],
        "did you mean 'userId'",
    ),
    BadInput(
        "wrong_delimiter",
        "semi.csv",
        b"user;item;rating\n1;2;3\n4;5;1\n",
        {"sep": ","},
        ["--sep", ","],
        "the delimiter looks like ';'",
    ),
    BadInput(
        "header_is_data",
        "nohead.csv",
        b"1,2,3\n4,5,6\n",
        {},
        [],
        "--no-header",
        library_expected="header=False",
    ),
    BadInput(
        "position_out_of_range",
        "pos.csv",
        b"1,2\n3,4\n",
        {"header": False, "item": 5},
        ["--no-header", "--item-col", "5"],
        "out of range",
    ),
    BadInput(
        "empty_user_id",
        "emptyid.csv",
        b"user,item\n1,a\n  ,b\n",
        {},
        [],
        "user id is empty",
        row=True,
    ),
    BadInput(
        "nan_item_id",
        "nanid.csv",
        b"user,item\n1,a\n2,NaN\n",
        {},
        [],
        "item id is missing",
        row=True,
    ),
    BadInput(
        "non_numeric_rating",
        "rating.csv",
        b"user,item,rating\n1,a,4\n2,b,abc\n",
        *_RATING,
        "'abc' is not a number",
        row=True,
    ),
    BadInput(
        "nan_rating",
        "nanrating.csv",
        b"user,item,rating\n1,a,nan\n",
        *_RATING,
        "rating is nan",
        row=True,
    ),
    BadInput(
        "infinite_rating",
        "infrating.csv",
        b"user,item,rating\n1,a,inf\n",
        *_RATING,
        "is infinite",
        row=True,
    ),
    BadInput(
        "short_line",
        "short.csv",
        b"user,item,rating\n1,a,4\n2,b\n",
        *_RATING,
        "the line has 2 field(s)",
        row=True,
    ),
    BadInput(
        "negative_weight",
        "negw.csv",
        b"user,item,w\n1,a,-1\n",
        *_WEIGHT,
        "is negative",
        row=True,
    ),
    BadInput(
        "non_numeric_weight",
        "textw.csv",
        b"user,item,w\n1,a,lots\n",
        *_WEIGHT,
        "is not a number",
        row=True,
    ),
    BadInput(
        "nan_weight",
        "nanw.csv",
        b"user,item,w\n1,a,NaN\n",
        *_WEIGHT,
        "weight is nan",
        row=True,
    ),
    BadInput(
        "bad_timestamp",
        "ts.csv",
        b"user,item,ts\n1,a,2020-01-01\n2,b,yesterday\n",
        *_TS,
        "is not a timestamp",
        row=True,
    ),
    BadInput(
        "duplicate_pairs",
        "dups.csv",
        b"user,item\n1,a\n2,b\n1,a\n",
        {},
        [],
        "duplicate (user, item)",
        row=True,
    ),
    BadInput(
        "too_many_fields",
        "ragged.csv",
        b"user,item\n1,a\n2,b,c\n",
        {},
        [],
        "has 3 field(s)",
        row=True,
    ),
    BadInput("unclosed_quote", "quote.csv", b'user,item\n1,"a\n2,b\n', {}, [], "never closed"),
    BadInput("binary_file", "binary.csv", bytes(range(256)) * 4, {}, [], "binary file"),
    BadInput("not_utf8", "latin.csv", b"user,item\n1,caf\xe9\n", {}, [], "not valid utf-8"),
    BadInput("parquet_named_csv", "table.csv", b"PAR1\x15\x04\x15", {}, [], "looks like a parquet"),
    BadInput(
        "gzip_without_suffix",
        "packed.csv",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
        {},
        [],
        "gzip-compressed",
    ),
    BadInput(
        "corrupt_parquet",
        "broken.parquet",
        b"PAR1 this is not really parquet",
        {},
        [],
        "not a readable parquet file",
    ),
    BadInput(
        "recbole_malformed_header",
        "bad.inter",
        b"user_id\titem_id:token\n1\t2\n",
        {},
        [],
        "malformed recbole header",
    ),
    BadInput(
        "recbole_comma_separated",
        "comma.inter",
        b"user_id:token,item_id:token\n1,2\n",
        {},
        [],
        "the delimiter looks like ','",
    ),
    BadInput(
        "unknown_suffix", "ratings.xlsx", b"user,item\n1,2\n", {}, [], "cannot tell the file format"
    ),
    BadInput(
        "all_rows_invalid",
        "allbad.csv",
        b"user,item,rating\n1,a,x\n2,b,y\n",
        {"rating": "rating", "on_invalid": "drop"},
        ["--rating-col", "rating", "--drop-invalid"],
        "all 2 row(s) are invalid",
        row=True,
    ),
]
