"""Smoke test of benchmarks/precision.py: the precision it times really switches, and is undone."""

from __future__ import annotations

import argparse

import torch

from chromaproxy.device import precision
from conftest import load_benchmark

load_benchmark("throughput")  # memory_layout imports its sibling, precision imports memory_layout
load_benchmark("memory_layout")
precision_bench = load_benchmark("precision")
CPU = torch.device("cpu")


def test_forced_switches_the_precision_and_restores_the_callers_setting(monkeypatch):
    monkeypatch.setenv("CHROMAPROXY_PRECISION", "fp32")
    with precision_bench.forced("bf16"):
        assert precision(CPU) == "bf16"
    assert precision(CPU) == "fp32"
    monkeypatch.delenv("CHROMAPROXY_PRECISION")
    with precision_bench.forced("fp32"):
        assert precision(CPU) == "fp32"
    assert "CHROMAPROXY_PRECISION" not in precision_bench.os.environ


def test_alternated_rates_times_every_setting(cifar_root, one_thread):
    args = argparse.Namespace(root=str(cifar_root), steps=1, rounds=1)
    settings = {"fp32": lambda: precision_bench.forced("fp32"), "bf16": lambda: precision_bench.forced("bf16")}
    rates = precision_bench.memory_layout.alternated_rates("supervised", settings, args)
    assert len(rates) == 2 and all(rate > 0 for rate in rates)
