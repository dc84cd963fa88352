"""The malloc settings the command line applies: freed activations are reused, not mapped anew."""

import os
import platform
import subprocess
import sys

import pytest

from chromaproxy.allocator import keep_freed_memory
from chromaproxy.errors import UserError

# Allocates and frees a 64 MiB tensor 40 times and prints the minor page faults that cost.
LOOP = """
import resource, torch
from chromaproxy.allocator import keep_freed_memory
print(keep_freed_memory())
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    torch.ones(16, 1024, 1024).sum()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(choice: str) -> tuple[str, int]:
    env = {**os.environ, "CHROMAPROXY_MALLOC": choice}
    applied, faults = subprocess.run([sys.executable, "-c", LOOP], env=env, capture_output=True, text=True, check=True).stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
def test_freed_memory_is_reused_instead_of_mapped_again():
    kept_applied, kept = _page_faults("keep")
    system_applied, system = _page_faults("system")
    assert (kept_applied, system_applied) == ("True", "False")
    assert system > 40 * 16384 * 0.9  # every allocation's 16,384 pages touched anew
    assert kept < system / 4


def test_a_typo_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("CHROMAPROXY_MALLOC", "jemalloc")
    with pytest.raises(UserError, match="CHROMAPROXY_MALLOC='jemalloc' is not a choice; use one of keep, system"):
        keep_freed_memory()


def test_the_command_line_applies_them():
    env = {**os.environ, "CHROMAPROXY_MALLOC": "jemalloc"}
    result = subprocess.run([sys.executable, "-m", "chromaproxy", "config", "show", "--keys"], env=env, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "CHROMAPROXY_MALLOC='jemalloc' is not a choice" in result.stderr
