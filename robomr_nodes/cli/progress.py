"""Progress bars for long commands (stderr; quiet when not a terminal unless forced)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm


def sim_time_bar(
    start_ns: int, duration_s: float, desc: str
) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A bar over node time: returns ``(on_advance(now_ns), close())``."""
    bar = tqdm(
        total=round(duration_s, 3),
        desc=desc,
        unit="s",
        file=sys.stderr,
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s sim [{elapsed}<{remaining}]",
    )

    def on_advance(now_ns: int) -> None:
        bar.n = min((now_ns - start_ns) / 1e9, duration_s)
        bar.refresh()

    return on_advance, bar.close
