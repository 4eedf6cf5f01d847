"""Timing statistics shared by the benchmark scripts that set Rust (criterion) beside Python
(timeit), so that both sides are summarised the same way.

Each side gives two figures per case:

* **typical**: the median of its repeated measurements (criterion's samples; `REPEATS`
  `timeit` repeats), which a burst of load on this shared machine moves little;
* **best**: the fastest of those measurements (the per-sample mean of criterion's fastest
  sample; the fastest `timeit` repeat), the machine at its least disturbed.

A ratio is only ever taken between like figures: typical / typical, best / best. The typical
figures are the ones to judge by: the best ones are not sampled alike (criterion's best is the
fastest of ~100 samples of ~20 ms, Python's the fastest of 11 runs of at least 0.2 s, and the
fastest of many short samples is lower), so best / best leans towards Rust and is shown for
context only.
"""
import json
import os
import statistics
import timeit

# timeit repeats per Python case; each repeat runs the call for at least 0.2 s (`autorange`).
REPEATS = 11


def criterion(target, group, name):
    """(typical, best) ns per iteration of a criterion bench that has just run."""
    base = os.path.join(target, "criterion", group, name, "new")
    with open(os.path.join(base, "estimates.json")) as f:
        typical = json.load(f)["median"]["point_estimate"]
    with open(os.path.join(base, "sample.json")) as f:
        sample = json.load(f)
    best = min(t / n for t, n in zip(sample["times"], sample["iters"]))
    return typical, best


def python(fn, repeats=REPEATS):
    """(typical, best) ns per call of `fn`."""
    timer = timeit.Timer(fn)
    n, _ = timer.autorange()
    runs = [t / n * 1e9 for t in timer.repeat(repeat=repeats, number=n)]
    return statistics.median(runs), min(runs)
