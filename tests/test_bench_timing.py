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
