"""Progress for people and for cron: a tqdm bar on a terminal, else a timestamped log line at
every tenth of the work (a log file of a nightly job should say how far it got, not redraw)."""

from __future__ import annotations

import logging

from tqdm import tqdm

log = logging.getLogger("indexer.build")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # the CLI's and the parser's


class Progress:
    def __init__(self, total: int, what: str, unit: str, bar: bool) -> None:
        self.total, self.what, self.unit = total, what, unit
        self.done = 0
        self._next_tenth = 1
        self._bar = tqdm(total=total, desc=what, unit=unit, leave=False) if bar else None

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        while self.total and self.done * 10 >= self._next_tenth * self.total \
                and self._next_tenth <= 10:
            log.info("%s: %d/%d %s (%d %%)", self.what, self.done, self.total, self.unit,
                     self._next_tenth * 10)
            self._next_tenth += 1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
