"""CSV reading with pyarrow and errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from thinkfl_operator.core.errors import DatasetError

#: Threads given to pyarrow work (parsing files, compute kernels), which runs without the GIL.
THREADS = min(4, os.cpu_count() or 1)


def read_csv(path: Path, required: tuple[str, ...], text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV with a header; ``required`` columns must exist, ``text_columns`` stay strings."""
    return read_table(path, required, text_columns).to_pandas()


def header_names(path: Path, required: tuple[str, ...]) -> list[str]:
    """The column names of a CSV's header; ``DatasetError`` naming the file when it cannot be
    read or lacks a ``required`` column (checked before any row is parsed)."""
    try:
        header = path.open("r", encoding="utf-8", errors="replace").readline()
    except OSError as exc:
        raise DatasetError(path, f"cannot read: {exc.strerror or exc}") from None
    names = [h.strip() for h in header.strip().split(",")]
    missing = [c for c in required if c not in names]
    if missing:
        raise DatasetError(path, f"missing column(s) {', '.join(missing)}; header is {header.strip()[:200]!r}")
    return names


def read_table(path: Path, required: tuple[str, ...], text_columns: tuple[str, ...] = ()) -> pa.Table:
    """``read_csv`` without the conversion to pandas."""
    names = header_names(path, required)
    types = {c: pa.string() for c in text_columns if c in names}
    convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True)
    try:
        table = pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed or corrupt values in a numeric column: read every column as text, coerce later.
        convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True)
        try:
            table = pacsv.read_csv(path, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DatasetError(path, f"malformed CSV: {str(exc).splitlines()[0]}") from None
    return table
