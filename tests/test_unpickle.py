"""The restricted unpickler builds numpy arrays and containers, and nothing that could run code."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import data_root
from chromaproxy.data.unpickle import safe_load
from chromaproxy.errors import UserError

DATA = data_root()


class _Payload:
    """Pickles to a call of os.system that would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_malicious_pickle_is_refused_before_its_payload_runs(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": _Payload(marker)}, protocol=protocol))
    with pytest.raises(UserError, match=r"refusing to unpickle .*data_batch_1.*'(posix|nt)\.system'") as err:
        safe_load(path)
    assert not marker.exists()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("numpy", "load"), ("subprocess", "Popen")])
def test_every_global_outside_numpy_array_rebuild_is_refused(module: str, name: str) -> None:
    stream = io.BytesIO(f"c{module}\n{name}\n(S'1'\ntR.".encode())
    with pytest.raises(UserError, match=f"'{module}.{name}'"):
        safe_load(stream)


@pytest.mark.parametrize("protocol", [3, 4])
def test_numpy_arrays_and_containers_round_trip(protocol: int) -> None:
    value = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3], b"name": b"x"}
    loaded = safe_load(io.BytesIO(pickle.dumps(value, protocol=protocol)))
    np.testing.assert_array_equal(loaded[b"data"], value[b"data"])
    assert loaded[b"labels"] == [1, 2, 3] and loaded[b"name"] == b"x"


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", pickle.dumps(list(range(1000)))[:50]])
def test_truncated_or_foreign_bytes_raise_user_error_with_hint(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "test_batch"
    path.write_bytes(content)
    with pytest.raises(UserError, match="test_batch.*re-download it"):
        safe_load(path, hint="re-download it")


def test_official_cifar_files_load() -> None:
    if not (DATA / "cifar10" / "data_batch_1").is_file():
        pytest.skip(f"CIFAR-10 not found under {DATA} (set CHROMAPROXY_DATA)")
    meta = safe_load(DATA / "cifar10" / "batches.meta")
    batch = safe_load(DATA / "cifar10" / "test_batch")
    assert meta[b"label_names"][3] == b"cat"
    assert batch[b"data"].shape == (10000, 3072) and batch[b"data"].dtype == np.uint8
