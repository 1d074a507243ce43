"""Timing helpers shared by the benchmark scripts.

Every benchmark measures the course code and its baseline in the same process,
interleaved, and reports the ratio of medians, so machine noise cancels.
"""

import statistics
import time
from dataclasses import dataclass


@dataclass
class Result:
    id: str
    what: str
    ratio: float          # higher is better for the course
    target: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.ratio >= self.target

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"{self.id:<4} {self.what:<52} {self.ratio:7.2f}x  (target >= {self.target:g}x)  {verdict}  {self.detail}"


def interleaved_medians(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Median seconds per call for each function, calling them in turn ``repeats`` times."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def matmul_peak_flops(size: int = 2048, repeats: int = 10) -> float:
    """Measured fp32 matmul throughput (FLOP/s) of this machine: the utilisation yardstick."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = interleaved_medians({"mm": lambda: a @ b}, repeats=repeats, warmup=2)["mm"]
    return 2 * size**3 / seconds


def report(results: list) -> None:
    print()
    for result in results:
        print(result.line())
