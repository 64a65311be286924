"""``nezha_logs._file_runs`` (every file's coverage runs at once) is ``_runs`` file by file:
files in time order and not, empty files, single lines, gaps just at and past the gap, runs just
shorter and as long as the shortest run, equal times, stray lines."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from thinkfl_operator.telemetry import nezha_logs as nl


def _old(times: np.ndarray, sizes: list[int]) -> list[tuple[float, float]]:
    return [run for lo, hi in itertools.pairwise(np.cumsum([0, *sizes])) for run in nl._runs(times[lo:hi])]


def _file(rng: np.random.Generator, start: int) -> np.ndarray:
    n = int(rng.choice([0, 1, 9, 10, 11, 30, 200]))
    steps = rng.choice([0, 10**8, 10**9, 29 * 10**9, 30 * 10**9, 30 * 10**9 + 1, 31 * 10**9, 3600 * 10**9],
                       size=n, p=[0.2, 0.4, 0.2, 0.05, 0.05, 0.04, 0.03, 0.03])
    return start + np.cumsum(steps).astype(np.int64)


@pytest.mark.parametrize("seed", range(20))
def test_file_runs_are_each_files_runs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    files = [_file(rng, 1_674_982_932_420_319_887 + int(rng.integers(0, 10**12))) for _ in range(int(rng.integers(0, 8)))]
    if seed % 3 == 0 and files and len(files[0]) > 2:
        files[0] = files[0][::-1].copy()  # a file out of order: file by file
    times = np.concatenate(files) if files else np.zeros(0, dtype=np.int64)
    sizes = [len(f) for f in files]
    assert nl._file_runs(times, sizes) == _old(times, sizes)


def test_file_runs_edges() -> None:
    assert nl._file_runs(np.zeros(0, dtype=np.int64), []) == []
    assert nl._file_runs(np.zeros(0, dtype=np.int64), [0, 0]) == []
    one = np.arange(10, dtype=np.int64) * 10**9
    assert nl._file_runs(np.concatenate([one, one]), [10, 10]) == _old(np.concatenate([one, one]), [10, 10])
    assert nl._file_runs(np.concatenate([one, one + 5]), [0, 10, 0, 10, 0]) == [(0.0, 9.0), (5e-9, 9.000000005)]
