"""The usage queue and its sender thread.

- ``put`` never blocks and never drops: it queues the event, or raises ``QueueFull``
  when ``max_queue`` events already wait (the caller then knows the event is not queued).
- The thread sends a batch when ``batch_size`` events wait or the oldest has waited
  ``flush_interval`` seconds (at once when someone flushes or closes).
- A batch that meets 429, a 5xx or no answer is resent, the SAME events with the SAME ids
  (the console stores an id once, so a batch whose answer was lost is not counted twice),
  after ``Retry-After`` when the console says it, else after an exponential backoff with
  jitter (0.5 s doubling, at most ``max_backoff``). It keeps trying until it is delivered
  or the client is closed and its close timeout has passed.
- Events the console refuses (422 items, or a whole batch refused with 400/401/403/413/415)
  cannot succeed by resending: they are kept in ``rejected`` (the last 1,000), logged as a
  warning and passed to ``on_rejected``.
- What is still unsent when the close timeout ends is kept in ``undelivered`` and logged
  as an error with every id: nothing disappears without a word.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from aipm_client.errors import ClientClosed, ConsoleUnavailable, QueueFull
from aipm_client.transport import Answer, Transport

log = logging.getLogger("aipm_client")

USAGE_PATH = "/api/v1/usage"
MAX_BATCH = 1_000  # the console's limit per request
KEPT_REJECTIONS = 1_000
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Rejected:
    """An event the console refused: its ``code`` (``invalid``, ``unknown_feature``, …)
    and ``errors`` (each wrong field)."""

    event: dict[str, Any]
    code: str
    errors: dict[str, str]


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class Recorder:
    def __init__(
        self,
        transport: Transport,
        *,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        send_timeout: float = 10.0,
        max_backoff: float = 60.0,
        on_rejected: Callable[[Rejected], None] | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH}")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._transport = transport
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.send_timeout = send_timeout
        self.max_backoff = max_backoff
        self.on_rejected = on_rejected
        self._queue: deque[tuple[float, dict[str, Any]]] = deque()
        self._pending = 0  # queued + in the batch being sent
        self._flushing = 0  # flush() calls waiting
        self._closing = False
        self._give_up_at: float | None = None  # close's deadline
        self._abort = threading.Event()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.rejected: deque[Rejected] = deque(maxlen=KEPT_REJECTIONS)
        self.undelivered: list[dict[str, Any]] = []
        self.batches_sent = 0  # requests answered (any status), retries included
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        """A forked child (gunicorn --preload, multiprocessing) has no sender thread and
        maybe a lock held by a thread that does not exist there: start afresh. The events
        queued before the fork stay the parent's to send."""
        self._cond = threading.Condition()
        self._abort = threading.Event()
        self._thread = None
        self._queue.clear()
        self._pending = 0
        self._flushing = 0

    # --- the caller's side ------------------------------------------------------------

    def put(self, event: dict[str, Any]) -> None:
        with self._cond:
            if self._closing:
                raise ClientClosed("the client is closed: the event was not queued")
            if len(self._queue) >= self.max_queue:
                raise QueueFull(
                    f"{len(self._queue)} usage events are waiting to be sent (max_queue="
                    f"{self.max_queue}): event {event.get('id')} was not queued"
                )
            self._queue.append((time.monotonic(), event))
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="aipm-client-usage", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Events queued or being sent."""
        with self._cond:
            return self._pending

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is queued now; True once nothing is pending, False if ``timeout``
        seconds passed first (the events stay queued)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._pending:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    self._cond.wait(left)
                return self._pending == 0
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 5.0) -> int:
        """Stop taking events, send what is queued for at most ``timeout`` seconds, and
        return how many events could not be delivered (kept in ``undelivered``)."""
        with self._cond:
            if self._give_up_at is None:
                self._give_up_at = time.monotonic() + timeout
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(max(0.0, timeout))
            if thread.is_alive():
                self._abort.set()
                thread.join(1.0)
        with self._cond:
            left = [event for _, event in self._queue]
            self._queue.clear()
            self._pending -= len(left)
            self._cond.notify_all()
        self._give_up(left)
        return len(self.undelivered)

    # --- the sender thread ------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                oldest = self._queue[0][0]
                while (
                    len(self._queue) < self.batch_size and not self._closing and not self._flushing
                ):
                    left = oldest + self.flush_interval - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                count = min(self.batch_size, len(self._queue))
                batch = [self._queue.popleft()[1] for _ in range(count)]
            try:
                self._deliver(batch)
            except Exception:  # never let the thread die with events in hand
                log.exception("aipm_client: unexpected error sending %d usage events", count)
                self._give_up(batch)
            with self._cond:
                self._pending -= count
                self._cond.notify_all()
            if self._abort.is_set():
                return

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            timeout = self._time_left(self.send_timeout)
            if timeout is None:
                self._give_up(batch)
                return
            try:
                answer = self._transport.request(
                    "POST", USAGE_PATH, timeout, body={"events": batch}
                )
            except ConsoleUnavailable as error:
                delay = self._backoff(attempt)
                log.info("aipm_client: usage not sent (%s); again in %.1f s", error, delay)
            else:
                self.batches_sent += 1
                if answer.status not in RETRYABLE:
                    self._settle(batch, answer)
                    return
                asked = retry_after_seconds(answer.headers.get("retry-after"))
                delay = self._backoff(attempt) if asked is None else asked
                log.info(
                    "aipm_client: the console answered %d to usage; again in %.1f s",
                    answer.status,
                    delay,
                )
            attempt += 1
            wait = self._time_left(delay)
            if wait is None or wait < delay or self._abort.wait(delay):
                self._give_up(batch)
                return

    def _time_left(self, wanted: float) -> float | None:
        """``wanted`` seconds, cut to what close leaves; None when nothing is left."""
        if self._abort.is_set():
            return None
        if self._give_up_at is None:
            return wanted
        left = self._give_up_at - time.monotonic()
        return min(wanted, left) if left > 0 else None

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff, 0.5 * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)

    def _settle(self, batch: list[dict[str, Any]], answer: Answer) -> None:
        body = answer.json()
        if answer.status in (200, 207, 422) and isinstance(body.get("data"), dict):
            for item in body["data"].get("rejected") or []:
                index = item.get("index")
                if isinstance(index, int) and 0 <= index < len(batch):
                    self._reject(
                        Rejected(batch[index], str(item.get("code")), item.get("errors") or {})
                    )
            return
        reason = str(body.get("details") or body.get("error") or f"HTTP {answer.status}")
        code = str(body.get("code") or f"http_{answer.status}")
        for event in batch:
            self._reject(Rejected(event, code, {"batch": reason}))

    def _reject(self, rejected: Rejected) -> None:
        self.rejected.append(rejected)
        log.warning(
            "aipm_client: the console refused usage event %s (%s): %s",
            rejected.event.get("id"),
            rejected.code,
            rejected.errors,
        )
        if self.on_rejected is not None:
            try:
                self.on_rejected(rejected)
            except Exception:
                log.exception("aipm_client: on_rejected raised")

    def _give_up(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        self.undelivered.extend(events)
        log.error(
            "aipm_client: %d usage events could not be delivered before close; ids: %s",
            len(events),
            ", ".join(str(event.get("id")) for event in events),
        )
