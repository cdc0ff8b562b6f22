"""A progress line that shows the rate a long loop runs at, for the tools that run a model over a dataset."""
import sys
import time
from typing import Optional, TextIO


class ThroughputBar:
    """Count items done and show ``done/total``, items per second and the time left.

    On a terminal the line is redrawn in place (at most twice a second); in a log file a line is written at most
    every ``log_interval`` seconds, and once at the end.

    Args:
        total (int): Items to do.
        unit (str): What an item is, e.g. ``'images'``. Defaults to ``'items'``.
        label (str): Text shown before the counts. Defaults to ``''``.
        stream (TextIO, optional): Where to write. Defaults to ``sys.stdout``.
        log_interval (float): Seconds between lines when ``stream`` is not a terminal. Defaults to 30.
    """

    def __init__(self, total: int, unit: str = 'items', label: str = '', stream: Optional[TextIO] = None,
                 log_interval: float = 30.0) -> None:
        self.total = total
        self.unit = unit
        self.label = f'{label}: ' if label else ''
        self.stream = sys.stdout if stream is None else stream
        self.interactive = self.stream.isatty()
        self.interval = 0.5 if self.interactive else log_interval
        self.done = 0
        self.start = time.perf_counter()
        self.last_shown = self.start

    def line(self) -> str:
        """The current progress, e.g. ``'rank 0 of 8: 512/1024 images, 85.3 images/s, 6 s left'``."""
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = f'{(self.total - self.done) / rate:.0f} s left' if rate > 0 else 'time left unknown'
        return f'{self.label}{self.done}/{self.total} {self.unit}, {rate:.1f} {self.unit}/s, {left}'

    def update(self, count: int) -> None:
        """Add ``count`` finished items and show the line when it is time to."""
        self.done += count
        now = time.perf_counter()
        if now - self.last_shown >= self.interval:
            self.show()
            self.last_shown = now

    def show(self) -> None:
        self.stream.write(('\r' if self.interactive else '') + self.line() + ('' if self.interactive else '\n'))
        self.stream.flush()

    def close(self) -> None:
        """Show the final line and end it."""
        self.stream.write(('\r' if self.interactive else '') + self.line() + '\n')
        self.stream.flush()
