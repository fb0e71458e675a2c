"""The entry points' glibc malloc tuning: applied, effective, and overridable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from simvp_model import allocator

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# mallocs, writes and frees a 64 MiB block 6 times; prints the minor page faults
# of the last 5 rounds. 64 MiB is above glibc's largest adaptive mmap threshold (32 MiB).
PROBE = textwrap.dedent(
    """
    import ctypes, ctypes.util, resource, sys
    if sys.argv[1] == "tuned":
        from simvp_model.allocator import tune_glibc_malloc
        assert tune_glibc_malloc()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, (ctypes.c_void_p,)
    def round_trip():
        block = libc.malloc(64 << 20)
        ctypes.memset(block, 1, 64 << 20)
        libc.free(block)
    round_trip()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        round_trip()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUN"))}
    env.pop(allocator.OPT_OUT_VARIABLE, None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout.split()[-1])


def _transparent_huge_pages_always() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as fh:
            return "[always]" in fh.read()
    except OSError:
        return False


@pytest.mark.skipif(_transparent_huge_pages_always(), reason="2 MiB pages hide the 4 KiB faults")
def test_tuning_stops_large_blocks_from_faulting_on_every_reuse():
    untuned, tuned = _faults("default"), _faults("tuned")
    pages = 5 * (64 << 20) // 4096  # 81,920 fresh pages if every round faults its block in
    assert untuned > pages // 2, untuned
    assert tuned < pages // 20, tuned


def test_opt_out_and_user_settings_win(monkeypatch):
    for name in allocator.USER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(allocator.OPT_OUT_VARIABLE, "0")
    assert allocator.tune_glibc_malloc() is False
    monkeypatch.delenv(allocator.OPT_OUT_VARIABLE)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert allocator.tune_glibc_malloc() is False
