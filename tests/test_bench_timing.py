"""Timing code on known cases: a scripted clock for the percentiles, real children for RSS."""

import sys

import pytest
import torch

from bench.timing import LatencyConfig, measure_latency, measure_throughput, peak_rss_mb, percentile_summary


class ScriptedClock:
    """Each call to `fn` lasts the next scripted duration (seconds)."""

    def __init__(self, durations):
        self.durations = list(durations)
        self.now = 0.0
        self.calls = 0

    def clock(self):
        return self.now

    def fn(self):
        self.calls += 1
        if self.calls > WARMUP:  # warm-up calls are not timed, whatever they last
            self.now += self.durations[self.calls - WARMUP - 1]


WARMUP = 3


def test_latency_percentiles_and_warmup_on_a_scripted_clock():
    durations = [0.001 * (i + 1) for i in range(100)]  # 1 ms .. 100 ms
    sc = ScriptedClock(durations)
    stats = measure_latency(sc.fn, LatencyConfig(runs=100, warmup=WARMUP, threads=1), clock=sc.clock)
    assert sc.calls == 103
    assert stats["runs"] == 100 and stats["warmup"] == WARMUP and stats["threads"] == 1
    assert stats["p50_ms"] == pytest.approx(50.5)
    assert stats["p95_ms"] == pytest.approx(95.05)
    assert stats["min_ms"] == pytest.approx(1.0)
    assert stats["mean_ms"] == pytest.approx(50.5)


def test_throughput_is_batch_over_median_time():
    sc = ScriptedClock([0.5] * 20)
    stats = measure_throughput(sc.fn, batch_size=16, cfg=LatencyConfig(runs=20, warmup=WARMUP, threads=1), clock=sc.clock)
    assert stats["images_per_s"] == pytest.approx(32.0)


def test_threads_are_set_during_the_runs_and_restored():
    before = torch.get_num_threads()
    seen = []
    measure_latency(lambda: seen.append(torch.get_num_threads()), LatencyConfig(runs=5, warmup=1, threads=1))
    assert set(seen) == {1}
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        percentile_summary([])


def test_peak_rss_sees_what_the_child_allocates():
    small = peak_rss_mb([sys.executable, "-c", "import numpy"])
    big = peak_rss_mb([sys.executable, "-c", "import numpy; a = numpy.ones(300 * 2**20 // 8); print(a.sum())"])
    assert small["returncode"] == big["returncode"] == 0
    assert big["peak_rss_mb"] > small["peak_rss_mb"] + 250
    failed = peak_rss_mb([sys.executable, "-c", "import sys; sys.exit('boom')"])
    assert failed["returncode"] == 1 and failed["stderr_tail"] == "boom"


def _process(p50, p95, mean, low):
    return {"autoregressive": {"p50_ms": p50, "p95_ms": p95, "mean_ms": mean, "min_ms": low, "runs": 100},
            "generator": "ar", "torch_loaded": False}


def test_latency_rounds_report_the_median_process_so_one_slow_spell_does_not_move_it():
    from bench.ort_latency import combine_rounds
    from bench.run import _rounds_note

    one = _process(70.0, 80.0, 72.0, 66.0)
    assert combine_rounds([one]) == one  # one process: its own figures, untouched
    merged = combine_rounds([one, _process(88.5, 120.0, 95.0, 68.0), _process(69.0, 79.0, 71.0, 65.0)])
    ar = merged["autoregressive"]
    assert (ar["p50_ms"], ar["p95_ms"], ar["mean_ms"], ar["min_ms"]) == (70.0, 80.0, 72.0, 65.0)
    assert ar["rounds"] == 3 and ar["p50_ms_per_round"] == [70.0, 88.5, 69.0] and ar["runs"] == 100
    assert merged["generator"] == "ar" and merged["torch_loaded"] is False
    assert combine_rounds([one, {**_process(1, 2, 3, 1), "torch_loaded": True}])["torch_loaded"] is True
    assert _rounds_note(ar) == "; median of 3 fresh processes (p50s 70.0, 88.5, 69.0 ms)"
    assert _rounds_note(one["autoregressive"]) == ""


def test_latency_rounds_must_be_positive():
    from bench.ort_latency import time_in_fresh_process

    with pytest.raises(ValueError, match="rounds"):
        time_in_fresh_process("no-bundle", rounds=0)
