"""Smoke test of benchmarks/allocator.py: one bounded run of the real command under a malloc setting."""

from __future__ import annotations

from conftest import load_benchmark

allocator_bench = load_benchmark("allocator")


def test_run_once_reports_the_speed_and_the_processs_usage(cifar_root, monkeypatch):
    monkeypatch.setenv("CHROMAPROXY_DATA", str(cifar_root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    result = allocator_bench.run_once("supervised", "keep", 20, ("data.limit=256", "train.batch_size=16"))
    assert set(result) == {"img_per_s", "minflt", "sys_s", "peak_mb"}
    assert result["img_per_s"] > 0 and result["minflt"] > 0 and result["peak_mb"] > 100  # torch alone takes more
