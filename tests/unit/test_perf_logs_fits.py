"""``templates._fits`` (bytes told eight at a time) against a byte-by-byte reading of its
template: every byte value (0 to 255) at every position of the usual head and tail templates."""

from __future__ import annotations

import numpy as np

from thinkfl_operator.evidence import templates as t


def _spelled(text: bytes, template: str) -> bool:
    for byte, code in zip(text, template.encode(), strict=True):
        if code == 0 and not 0x30 <= byte <= 0x39:
            return False
        if code == 1 and not (0x30 <= byte <= 0x39 or 0x61 <= byte <= 0x66):
            return False
        if code > 2 and byte != code:
            return False
    return True


def test_fits_reads_every_byte_at_every_position() -> None:
    for template in (t._CLOCK + " " + "\2" * 3, "\2" * 4 + t._TAIL):
        valid = bytes(0x35 if c in (0, 1) else 0x41 if c == 2 else c for c in template.encode())
        texts = [valid] + [valid[:i] + bytes([b]) + valid[i + 1:] for i in range(len(valid)) for b in range(256)]
        data = np.frombuffer(b"".join(texts) + b"\0" * 3, dtype=np.uint8)
        starts = np.arange(len(texts)) * len(valid)
        got = t._fits(data, starts, template)
        assert got.tolist() == [_spelled(x, template) for x in texts]
