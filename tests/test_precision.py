"""The autocast policy: bf16 on CUDA and on CPUs with native bf16 (AMX or AVX-512 BF16), float32 elsewhere,
overridable per process."""

import pytest
import torch

import chromaproxy.device as device_module
from chromaproxy.device import autocast, precision
from chromaproxy.errors import UserError

CPU = torch.device("cpu")


@pytest.mark.parametrize("capabilities, expected", [
    ({"avx512_f": True, "amx_bf16": True, "avx512_bf16": True}, "bf16"),  # Sapphire Rapids
    ({"avx512_f": True, "amx_bf16": False, "avx512_bf16": True}, "bf16"),  # Zen 4/5 EPYC
    ({"avx512_f": True, "amx_bf16": False, "avx512_bf16": False}, "fp32"),  # Skylake-SP
    ({"avx2": True}, "fp32"),
])
def test_auto_follows_the_cpu(monkeypatch, capabilities, expected):
    monkeypatch.delenv("CHROMAPROXY_PRECISION", raising=False)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    device_module.cpu_has_native_bf16.cache_clear()
    try:
        assert precision(CPU) == expected
        assert precision(torch.device("cuda")) == "bf16"
    finally:
        monkeypatch.undo()
        device_module.cpu_has_native_bf16.cache_clear()


@pytest.mark.parametrize("wanted", ["fp32", "bf16"])
def test_the_environment_overrides_the_hardware(monkeypatch, wanted):
    monkeypatch.setenv("CHROMAPROXY_PRECISION", wanted)
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: wanted == "fp32")
    assert precision(CPU) == wanted


@pytest.mark.parametrize("wanted, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_autocast_runs_convolutions_in_the_chosen_precision(monkeypatch, wanted, dtype):
    monkeypatch.setenv("CHROMAPROXY_PRECISION", wanted)
    conv = torch.nn.Conv2d(3, 4, 3)
    with autocast(CPU):
        out = conv(torch.randn(2, 3, 8, 8))
    assert out.dtype == dtype


def test_a_typo_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("CHROMAPROXY_PRECISION", "fp16")
    with pytest.raises(UserError, match="CHROMAPROXY_PRECISION='fp16' is not a choice; use one of auto, bf16, fp32"):
        precision(CPU)
