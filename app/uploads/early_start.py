"""A big orders upload's summarizer started while the fast path still stages the file,
its COPY following the spool as it grows (`summarizer.Summarizer.following`)."""

from __future__ import annotations

from app.uploads.plan import Plan, UploadRun
from app.uploads.staging import GrowingSpool
from app.uploads.summarizer import Summarizer


class EarlyStart:
    """Starts an upload's summarizer while the fast path stages its orders, once the
    spool holds enough bytes for the rows that need one (`summarizer_min_rows` of the
    shortest row the fast path takes) and a pool connection is free. The stager tells
    it of each write to the spool (`grew`) and of the end (`finish`: always, also when
    the fast path fails or declines)."""

    # `1,1,1,2024-01-01` and its line end: fewer bytes hold fewer rows that pass (rows
    # that fail count too, so a file of short bad rows starts one only once staged).
    SHORTEST_ROW = 17

    def __init__(self, run: UploadRun, plan: Plan) -> None:
        self._run, self._plan = run, plan
        self._bytes = 0
        self._at = run.limits.summarizer_min_rows * self.SHORTEST_ROW
        self._spool: GrowingSpool | None = None  # the started summarizer's

    def grew(self, size: int) -> None:
        run = self._run
        self._bytes += size
        if self._spool is None:
            if self._bytes >= self._at and Summarizer.can_start(run.engine):
                run.summarizer = Summarizer.following(run, self._plan)
                self._spool = run.summarizer.spool
            return
        run.spool.flush()  # the summarizer reads the file, not the upload's buffer
        self._spool.grew()

    def finish(self) -> None:
        if self._spool is not None:
            self._run.spool.flush()
            self._spool.finish()
