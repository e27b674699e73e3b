"""unifmir._malloc: the fixed glibc mmap threshold (export memory)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_threshold_is_applied_and_inherited() -> None:
    code = textwrap.dedent(
        """
        import os, subprocess, sys
        from unifmir._malloc import limit_heap_fragmentation
        assert limit_heap_fragmentation(1 << 22) is True
        assert os.environ["MALLOC_MMAP_THRESHOLD_"] == str(1 << 22)
        out = subprocess.run([sys.executable, "-c", "import os; print(os.environ['MALLOC_MMAP_THRESHOLD_'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == str(1 << 22), out
        """
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr


def test_a_value_set_by_the_user_is_kept() -> None:
    code = "import os; from unifmir._malloc import limit_heap_fragmentation as f; " \
           "assert f(1 << 22) is True; assert os.environ['MALLOC_MMAP_THRESHOLD_'] == '65536'"
    env = dict(__import__("os").environ, MALLOC_MMAP_THRESHOLD_="65536")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr


def _fragmentation_script(apply: bool) -> str:
    return textwrap.dedent(
        f"""
        import ctypes
        from unifmir._malloc import limit_heap_fragmentation
        if {apply}:
            assert limit_heap_fragmentation()
        def rss():
            return int(open("/proc/self/statm").read().split()[1]) * 4096
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
        size = (4 << 20) + (64 << 10)
        libc.free(libc.malloc(2 * size))  # glibc's default now raises its mmap threshold above `size`
        base = rss()
        big, pins = [], []
        for _ in range(16):  # big blocks, each followed by a small live one (no trimming of the heap top)
            p = libc.malloc(size)
            ctypes.memset(p, 1, size)
            big.append(p)
            pins.append(libc.malloc(300 << 10))  # too large for glibc's caches of small freed blocks
        for p in big:
            libc.free(p)
        print((rss() - base) >> 20)
        """
    )


def test_freed_blocks_go_back_to_the_system() -> None:
    """Freed activation-sized blocks stay resident with glibc's adaptive threshold and are returned
    with the fixed one."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    kept = {}
    for apply in (False, True):
        res = subprocess.run([sys.executable, "-c", _fragmentation_script(apply)], capture_output=True, text=True,
                             env=env, timeout=120)
        assert res.returncode == 0, res.stderr
        kept[apply] = int(res.stdout.strip().splitlines()[-1])
    assert kept[False] >= 60 and kept[True] <= 10, kept  # MiB still resident after freeing 16 x 4 MiB
