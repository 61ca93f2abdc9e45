"""Progress for long commands on stderr: a bar on a terminal, a line per 10% in logs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tqdm import tqdm


def sim_time_bar(
    start_ns: int, duration_s: float, desc: str
) -> tuple[Callable[[int], None], Callable[[], None]]:
    """Progress over node time: returns ``(on_advance(now_ns), close())``."""
    if sys.stderr.isatty():
        bar = tqdm(
            total=round(duration_s, 3),
            desc=desc,
            unit="s",
            file=sys.stderr,
            mininterval=0.5,
            bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s sim [{elapsed}<{remaining}]",
        )

        def on_advance(now_ns: int) -> None:
            bar.n = min((now_ns - start_ns) / 1e9, duration_s)
            bar.refresh()

        return on_advance, bar.close

    wall0, last = time.monotonic(), [-1]

    def log_line(now_ns: int) -> None:
        step = int(10 * min((now_ns - start_ns) / 1e9, duration_s) / duration_s)
        if step > last[0]:
            last[0] = step
            print(
                f"{desc}: {10 * step}% ({step * duration_s / 10:.1f}/{duration_s:.1f} s sim, "
                f"{time.monotonic() - wall0:.0f} s wall)",
                file=sys.stderr,
                flush=True,
            )

    return log_line, lambda: None
