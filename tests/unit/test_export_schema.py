"""Every exported row has one Arrow schema, whatever the incident (OpenRLHF loads the file with
``datasets.load_dataset("json")``, which infers a schema per chunk and casts the others to it).

Each row is read alone with ``pyarrow.json.read_json`` (as a chunk of its own would be) and the
schemas are compared; then the whole file is read in small blocks, as a large file is.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as paj

from tests.records import as_version_1
from tests.unit.export_cases import fi, incident, record_in
from thinkfl_operator.feedback.export import records_from_objects, write_jsonl
from thinkfl_operator.feedback.record import encode_record
from thinkfl_operator.feedback.redact import redact


def _version_1(record: dict[str, Any]) -> str:
    """A status.record as the first release wrote it (maps keyed by pod, no padding flags)."""
    old = as_version_1(record)
    return base64.b64encode(gzip.compress(json.dumps(old).encode())).decode()


def _model_record() -> str:
    """A ThinkFL answer: the model named one cause, ranking padded the rest."""
    record = record_in("busy-cart")
    record["engine"], record["model"] = "thinkfl", "ThinkFL"
    record["answer"] = [{**a, "padded": a["rank"] > 1} for a in record["answer"]]
    return encode_record(record)


def differing_rows() -> list[dict[str, Any]]:
    """Rows that differ in every way a row can: pods and services, label kinds, graded or
    missed, engine, padding, record version, notes, and redacted or not."""
    slow, busy = (incident(name)[0] for name in ("slow-recs", "busy-cart"))
    recs = record_in("slow-recs")
    answered = {a["service"] for a in recs["answer"]}
    missed = min({e["service"] for e in recs["topology"]} - answered)
    node = next(e["node"] for e in recs["topology"] if e["node"])
    objects = [
        fi("slow-recs", annotation=f"pod/{slow.faulty_pod}"),
        fi("busy-cart", label={"service": busy.faulty_service, "note": "throttled", "by": "bob",
                               "faultType": "cpu_contention"}),
        fi("on-a-node", annotation=f"node/{node}"),
        fi("missed", annotation=f"service/{missed}"),
        fi("old-record", annotation=f"pod/{slow.faulty_pod}", record=_version_1(recs)),
        fi("busy-cart", label={"pod": busy.faulty_pod}, record=_model_record(), engine="thinkfl",
           namespace="payments"),
    ]
    rows, skipped = records_from_objects(objects)
    assert not skipped and len(rows) == len(objects)
    assert {r["grade"]["rank"] for r in rows} >= {0, 1}  # graded and missed
    return rows + [redact(row, "s3cret") for row in rows]


def test_rows_that_differ_have_one_arrow_schema(tmp_path: Path) -> None:
    rows = differing_rows()
    tables = []
    for number, row in enumerate(rows):
        path = tmp_path / f"row{number}.jsonl"
        write_jsonl(path, [row])
        tables.append(paj.read_json(path))
    first = tables[0].schema
    for row, table in zip(rows, tables, strict=True):
        assert table.schema.equals(first), (row["id"], table.schema, first)
    assert pa.concat_tables(tables).num_rows == len(rows)
    # The columns OpenRLHF reads: a chat (list of role/content structs) and a string label.
    assert first.field("input").type == pa.list_(pa.struct([("role", pa.string()),
                                                             ("content", pa.string())]))
    assert first.field("label").type == pa.string()


def test_a_file_of_differing_rows_reads_in_small_blocks(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    write_jsonl(path, differing_rows())
    # Blocks of 64 kB: several rows per block, each block inferred on its own.
    table = paj.read_json(path, read_options=paj.ReadOptions(block_size=1 << 16))
    assert table.num_rows == len(differing_rows())
    assert table.column("redacted").to_pylist().count(True) == table.num_rows // 2
