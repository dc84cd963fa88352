"""Smoke test of benchmarks/memory_layout.py: the layout switch it times really switches, and is undone."""

from __future__ import annotations

import argparse

import torch

import chromaproxy.network
from conftest import load_benchmark

load_benchmark("throughput")  # memory_layout imports its sibling
memory_layout = load_benchmark("memory_layout")


def test_layout_switches_what_the_network_and_the_benchmark_read_and_restores_it():
    kept = chromaproxy.network.MEMORY_FORMAT
    with memory_layout.layout(torch.contiguous_format):
        assert chromaproxy.network.MEMORY_FORMAT == torch.contiguous_format
        assert memory_layout.throughput.MEMORY_FORMAT == torch.contiguous_format
    assert chromaproxy.network.MEMORY_FORMAT == kept == memory_layout.throughput.MEMORY_FORMAT == torch.channels_last


def test_a_backbone_case_runs_the_supervised_preset_with_that_backbone(cifar_root):
    cfg = memory_layout.case_config("resnet18", str(cifar_root))
    assert (cfg.model.name, cfg.model.width, cfg.tasks) == ("resnet18", 1.0, ["supervised"])
    assert memory_layout.case_config("rotation", str(cifar_root)).tasks == ["rotation"]


def test_bench_case_times_both_layouts(cifar_root, one_thread):
    args = argparse.Namespace(root=str(cifar_root), steps=1, rounds=1)
    contiguous, channels_last = memory_layout.bench_case("supervised", args)
    assert contiguous > 0 and channels_last > 0
