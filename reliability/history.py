"""What the torture's clients did and what they were told, in the order they were told.

Each operation ends in one of three ways, as in Jepsen's histories:
* `ok`: a 2xx answer: it happened, and the checker holds the system to it;
* `fail`: a 4xx answer: it did not happen (a 429 or a business refusal);
* `info`: no answer (yet), or a 5xx: it may or may not have happened. The checker
  resolves these from the database (a booking's Idempotency-Key, an adjustment's
  reason).

An operation enters the history when it is sent and is completed when its answer
comes (`ended` is set last), so a checker reading the history sees operations still in
flight as `info`: they may already have committed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Outcome = Literal["ok", "fail", "info"]


@dataclass
class Op:
    """One request. `kind` names the operation (book, replay, cancel, admin_cancel,
    adjust, read, sync...); `args` what was asked; `status` the HTTP status (None when
    no answer came); `data` the answer's `data` (2xx) or `error` (4xx/5xx) object."""

    kind: str
    args: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0
    status: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the exception, when no answer came
    retry_after: str | None = None  # the Retry-After header of a 429 or 503

    @property
    def done(self) -> bool:
        return self.ended > 0

    @property
    def outcome(self) -> Outcome:
        if not self.done or self.status is None or self.status >= 500:
            return "info"
        return "ok" if self.status < 400 else "fail"

    @property
    def code(self) -> str:
        """The error code of a refusal ("EXAM_FULL"), the status otherwise."""
        return str(self.data.get("code") or self.status or "no answer")


class History:
    """Thread-safe, append-only."""

    def __init__(self) -> None:
        self._ops: list[Op] = []
        self._lock = threading.Lock()

    def add(self, op: Op) -> None:
        with self._lock:
            self._ops.append(op)

    def ops(self, *kinds: str) -> list[Op]:
        with self._lock:
            return [op for op in self._ops if not kinds or op.kind in kinds]

    def answered(self, *kinds: str) -> list[Op]:
        """Operations whose answer (or failure to answer) has come."""
        return [op for op in self.ops(*kinds) if op.done]

    def frozen(self) -> History:
        """A copy holding the operations answered by now, each as it is now."""
        copy = History()
        copy._ops = [replace(op) for op in self.answered()]  # our own
        return copy

    def between(self, start: float, end: float) -> list[Op]:
        """Operations that ended inside [start, end) on the monotonic clock."""
        return [op for op in self.answered() if start <= op.ended < end]

    def __len__(self) -> int:
        with self._lock:
            return len(self._ops)


def statuses(ops: list[Op]) -> Counter[str]:
    """How many of `ops` ended with each status ("no answer" for none)."""
    return Counter(str(op.status) if op.status is not None else "no answer" for op in ops)
