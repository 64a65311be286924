"""The faster pieces of reading Nezha trace files give what the pieces they replace gave.

The old pieces are kept here as oracles: the parser's own UTF-8 check (``check_utf8=True``).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.telemetry import nezha
from thinkfl_operator.telemetry.nezha import NezhaStore

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "nezha" / "rca_data"
DAYS = sorted(SHARED.glob("*/trace")) if SHARED.is_dir() else []


HEADER = "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n"


def _trace_file(tmp_path: Path, row: bytes) -> Path:
    day = tmp_path / "2023-01-30"
    (day / "trace").mkdir(parents=True)
    (day / "metric").mkdir()
    path = day / "trace" / "11_51_trace.csv"
    path.write_bytes(HEADER.encode() + row)
    return path


def _parser_accepts(path: Path) -> bool:
    """The old way: the parser's own UTF-8 check."""
    convert = pacsv.ConvertOptions(column_types=nezha._TRACE_TYPES, strings_can_be_null=True)
    try:
        pacsv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid:
        return False
    return True


ROWS = {
    "ascii": b"t1,s1,root,ts-foo-service-1,GET /x,1675079461000000000,1675079461001000000,1000\n",
    "two-byte characters": "t1,s1,root,ts-foo-service-1,GET /caf\u00e9,1,2,1\n".encode(),
    "four-byte characters": "t1,s1,root,ts-foo-service-1,\U0001f600,1,2,1\n".encode(),
    "latin-1 in an operation": b"t1,s1,root,ts-foo-service-1,GET /caf\xe9,1,2,1\n",
    "a lone continuation byte in an ID": b"t\x801,s1,root,pod,op,1,2,1\n",
    "a cut sequence in a pod": b"t1,s1,root,pod\xe2\x82,op,1,2,1\n",
    "empty text": b",,,,,1,2,1\n",
}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_text_read_unchecked_is_refused_as_the_parser_refused_it(tmp_path: Path, name: str) -> None:
    path = _trace_file(tmp_path, ROWS[name])
    fast = nezha._read_trace_file(path, pacsv.ReadOptions(use_threads=False))
    assert (fast is not None) == _parser_accepts(path)
    if fast is not None:  # what the parser read, with its check
        convert = pacsv.ConvertOptions(column_types=nezha._TRACE_TYPES, strings_can_be_null=True)
        assert fast.equals(pacsv.read_csv(path, convert_options=convert))


def test_a_file_of_invalid_text_is_still_malformed(tmp_path: Path) -> None:
    path = _trace_file(tmp_path, ROWS["latin-1 in an operation"])
    with pytest.raises(DatasetError, match=r"11_51_trace\.csv: malformed CSV"):
        NezhaStore(path.parent.parent).spans_between(0, 2**62)
