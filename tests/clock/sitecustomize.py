"""Loaded by every Python process of a ``bin/test --at`` run (it puts this folder on PYTHONPATH).

libfaketime moves the wall clock (FAKETIME) and leaves the monotonic clock alone
(FAKETIME_DONT_FAKE_MONOTONIC=1), so timeouts and thread waits behave. libfaketime 0.9.10 then
mistranslates ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, which ``time.sleep`` uses
since Python 3.11, into a negative time (EINVAL; wolfcw/libfaketime#426). A sleep through
``select`` takes a relative timeout, which libfaketime passes through unchanged.
"""

from __future__ import annotations

import os
import select
import time


def _sleep(seconds: float) -> None:
    """time.sleep without clock_nanosleep: the same refusals, the same wait."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + seconds
    remaining = float(seconds)
    while True:
        select.select([], [], [], remaining)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return


if os.environ.get("FAKETIME") and "faketime" in os.environ.get("LD_PRELOAD", ""):
    time.sleep = _sleep
