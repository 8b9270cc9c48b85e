"""Progress lines on stderr: done/total, rate, time left; at most one every ~2 s."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Thread-safe counter that reports itself now and then."""

    def __init__(
        self,
        total: int,
        label: str = "indexed",
        every: float = 2.0,
        stream: TextIO | None = None,
        enabled: bool = True,
    ) -> None:
        self.total = total
        self.label = label
        self.every = every
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self._last = self.started
        self._first: float | None = None  # when the first documents were acknowledged
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        with self._lock:
            if self._first is None:
                self._first = time.monotonic()
            self.done += count

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        done, total, rate = self.done, self.total, self.rate
        if done == 0:
            return f"{self.label} 0/{total:,} docs, waiting for the first documents ({_duration(self.elapsed)})"
        percent = f" ({100 * done / total:.1f}%)" if total else ""
        # Time left from the rate since the first documents, not counting the wait for them.
        since_first = time.monotonic() - (self._first or self.started)
        pace = done / since_first if since_first > 0 else 0.0
        left = f", ~{_duration((total - done) / pace)} left" if pace > 0 and total > done else ""
        return f"{self.label} {done:,}/{total:,} docs{percent}, {rate:,.0f} docs/s{left}"

    def maybe_report(self) -> None:
        """Print a line if `every` seconds passed since the last one."""
        now = time.monotonic()
        if not self.enabled or now - self._last < self.every:
            return
        self._last = now
        print(self.line(), file=self.stream, flush=True)

    @contextmanager
    def ticking(self, interval: float = 0.5) -> Iterator[Progress]:
        """Report from a background thread while the block runs (also while the caller waits)."""
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(interval):
                self.maybe_report()

        thread = threading.Thread(target=tick, name="progress", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
