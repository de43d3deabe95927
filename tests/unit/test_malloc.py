"""The arena cap: set from the CLI's entry unless the environment chose already.

Each case runs in a child interpreter: ``mallopt`` changes the whole process."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = "from monitor.malloc import limit_arenas; print(limit_arenas())"

glibc = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the cap is glibc's mallopt(M_ARENA_MAX)"
)


def probe(**environment: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | environment
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@glibc
def test_glibc_takes_the_cap() -> None:
    assert "True" == probe()


def test_an_operator_s_malloc_arena_max_is_left_alone() -> None:
    assert "False" == probe(MALLOC_ARENA_MAX="8")
