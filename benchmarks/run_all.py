"""P1-P5: every benchmark in one process, then one table of ratios with PASS/FAIL.

P1-P2 benchmarks/training.py    training step vs Hugging Face; fast path vs textbook path
P3    benchmarks/generation.py  generate() with the KV cache vs without, and vs HF generate
P4    benchmarks/bpe.py         the chapter-2 BPE tokenizer vs tiktoken
P5    the CI budget, read from a saved ``.ci/run`` log (``--ci-log``): the whole run within
      25 min (the script's last line, ``total: N s``) and each notebook within 4 min, those of
      chapter 7 within 5 min (the "notebook wall times" that the root conftest.py prints after
      pytest). Ratio: budget / measured. Target: >= 1.0x.

A benchmark that raises (e.g. a failed correctness check) becomes a FAIL row; the others run on.
The exit status is 0 only if every row passes.

Run: python benchmarks/run_all.py [--quick] [--ci-log ci.log]
     (make the log with: bash .ci/run | tee ci.log)
"""

import argparse
import re
import sys
import time
import traceback
from pathlib import Path

import bpe
import generation
import training
from common import Result, report

CI_BUDGET_S = 25 * 60
NOTEBOOK_BUDGET_S = 4 * 60
NOTEBOOK_BUDGETS_S = {"ch07_instruction/": 5 * 60}  # path prefix -> its own budget
CI_TOTAL = re.compile(r"^total: (\d+) s$", re.MULTILINE)
NOTEBOOK_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?) s  (\S+\.ipynb)$", re.MULTILINE)
HOW_TO_LOG = "bash .ci/run | tee ci.log"


def ci_results(log_path) -> list:
    """P5 rows from the output of ``.ci/run``."""
    log = Path(log_path).read_text(encoding="utf-8", errors="replace")
    total = CI_TOTAL.findall(log)
    if total:
        seconds = int(total[-1])
        rows = [
            Result(
                "P5",
                f".ci/run within {CI_BUDGET_S // 60} min",
                CI_BUDGET_S / seconds,
                1.0,
                f"{seconds} s ({seconds / 60:.1f} min)",
            )
        ]
    else:
        rows = [
            Result(
                "P5",
                f".ci/run within {CI_BUDGET_S // 60} min",
                0.0,
                1.0,
                f"no 'total: N s' line in {log_path}: the run stopped early (a failing phase?)",
            )
        ]
    _, header, wall_times = log.partition("notebook wall times")
    notebooks = NOTEBOOK_TIME.findall(wall_times)
    if not header or not notebooks:
        return rows + [
            Result(
                "P5", "notebook wall times", 0.0, 1.0, f"none in {log_path}: pytest did not finish, or ran no notebook"
            )
        ]
    for seconds, path in notebooks:
        budget = next((b for prefix, b in NOTEBOOK_BUDGETS_S.items() if path.startswith(prefix)), NOTEBOOK_BUDGET_S)
        rows.append(Result("P5", f"{path} within {budget // 60} min", budget / float(seconds), 1.0, f"{seconds} s"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats everywhere: a smoke run, noisier")
    parser.add_argument("--ci-log", metavar="FILE", help=f"saved output of .ci/run, for P5 ({HOW_TO_LOG})")
    args = parser.parse_args()

    benchmarks = [
        ("P1-2", "training", lambda: training.main(quick=args.quick)),
        ("P3", "generation", lambda: generation.main(quick=args.quick)),
        ("P4", "bpe", lambda: bpe.main(repeats=1 if args.quick else 3)),
    ]
    results = []
    for ids, name, run in benchmarks:
        print(f"== {ids} benchmarks/{name}.py", flush=True)
        start = time.perf_counter()
        try:
            results += run()
        except Exception as exc:  # report it as a failed row and go on with the others
            traceback.print_exc()
            results.append(Result(ids, f"benchmarks/{name}.py raised", 0.0, 1.0, f"{type(exc).__name__}: {exc}"))
        print(f"   {time.perf_counter() - start:.0f} s", flush=True)
    if args.ci_log:
        results += ci_results(args.ci_log)

    report(results)
    if not args.ci_log:
        print(
            f"\nP5 (CI time budget) needs a saved CI log: {HOW_TO_LOG}, "
            "then python benchmarks/run_all.py --ci-log ci.log"
        )
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
