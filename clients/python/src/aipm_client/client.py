"""``Client``: what an application holds for the life of its process."""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from aipm_client.config import FeatureConfig, Variant
from aipm_client.errors import (
    ApiError,
    BudgetExhausted,
    ConsoleUnavailable,
    FeatureNotAllowed,
    Forbidden,
    InvalidRequest,
    Unauthorized,
    UnknownFeature,
)
from aipm_client.recorder import Recorder, Rejected
from aipm_client.transport import Answer, Transport

# When the console sends no Cache-Control (it always does): keep an answer this long.
DEFAULT_MAX_AGE = 30.0
DEFAULT_STALE_IF_ERROR = 86_400.0
BUNDLE_FORMAT = 1  # the "format" of flask config export's bundle this client reads


@dataclass(frozen=True)
class Reservation:
    """Money set aside under the feature's hard budgets. ``id`` is None when no hard
    budget covers the feature (nothing to settle); pass it as ``reservation_id`` to
    ``record`` to settle it with the request's actual cost."""

    id: str | None
    reserved_usd: Decimal
    expires_at: datetime | None


@dataclass
class _Entry:
    data: dict[str, Any]
    etag: str | None
    fetched_at: float  # the client's clock
    max_age: float
    stale_if_error: float
    from_fallback: bool = False
    retry_at: float = 0.0  # after a failed refresh: no new attempt before this


def cache_directives(header: str | None) -> tuple[float, float, bool]:
    """(max-age, stale-if-error, storable) from a Cache-Control header."""
    max_age, stale, storable = DEFAULT_MAX_AGE, DEFAULT_STALE_IF_ERROR, True
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        name = name.lower()
        try:
            if name == "max-age":
                max_age = max(0.0, float(value.strip('"')))
            elif name == "stale-if-error":
                stale = max(0.0, float(value.strip('"')))
        except ValueError:
            continue
        if name in ("no-store", "no-cache"):
            storable = name != "no-store"
            max_age = 0.0
    return max_age, stale, storable


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class Client:
    """The console's configuration, experiment variants, usage reporting and budget
    reservations for one API key (whose environment and features decide what it sees).

    ``timeout`` bounds every call made on the application's path (``config`` when it has
    to ask the console, ``reserve``) in total, not per socket operation. ``fallback_file``
    is the JSON of ``flask config export --environment …``: what ``config`` answers on a
    cold start while the console is unreachable. ``clock`` (monotonic seconds) is the
    cache's notion of time; tests inject one.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 2.0,
        fallback_file: str | os.PathLike[str] | None = None,
        retry_interval: float = 5.0,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        send_timeout: float = 10.0,
        max_backoff: float = 60.0,
        exit_timeout: float = 5.0,
        on_rejected: Callable[[Rejected], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.exit_timeout = exit_timeout
        self._clock = clock
        self._transport = Transport(base_url, api_key)
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._unreachable_until = float("-inf")
        self._fallback: dict[str, Any] = self._load_fallback(fallback_file) if fallback_file else {}
        self._recorder = Recorder(
            self._transport,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue=max_queue,
            send_timeout=send_timeout,
            max_backoff=max_backoff,
            on_rejected=on_rejected,
        )
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)
        # The recorder, not the client: events queued by a client the application dropped
        # are still sent at exit.
        atexit.register(self._recorder.close, exit_timeout)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # another thread of the parent may have held it

    # --- configuration ----------------------------------------------------------------

    @staticmethod
    def _load_fallback(path: str | os.PathLike[str]) -> dict[str, Any]:
        with open(path, encoding="utf-8") as handle:
            bundle = json.load(handle)
        if not isinstance(bundle, dict) or not isinstance(bundle.get("features"), dict):
            raise ValueError(
                f"{os.fspath(path)} is not a bundle of 'flask config export' (no 'features')"
            )
        if bundle.get("format", BUNDLE_FORMAT) != BUNDLE_FORMAT:
            raise ValueError(
                f"{os.fspath(path)} has format {bundle.get('format')!r}; this client reads "
                f"format {BUNDLE_FORMAT}: export it again with this console's release"
            )
        return bundle

    def config(self, feature: str) -> FeatureConfig:
        """The feature's configuration in the key's environment.

        Fresh in the cache (younger than the console's ``max-age``): no request. Older:
        revalidated with ``If-None-Match`` (a 304 keeps it and renews its age). When the
        console errs (429, 5xx) or is unreachable: the cached answer while it is within
        ``stale-if-error``, else the fallback bundle's, else ``ConsoleUnavailable``.
        After a failure the console is not asked again for ``retry_interval`` seconds,
        so an outage costs the application at most one ``timeout`` per interval.
        Refusals raise: ``Unauthorized`` (401), ``FeatureNotAllowed``/``Forbidden`` (403),
        ``UnknownFeature`` (404)."""
        features = self._fallback.get("features", {})
        data, source, etag = self._read(
            f"feature:{feature}",
            f"/api/v1/config/{quote(feature, safe='')}",
            features.get(feature) if isinstance(features.get(feature), dict) else None,
            f"the configuration of {feature!r}",
        )
        return FeatureConfig(data, source, etag)

    def config_all(self) -> dict[str, FeatureConfig]:
        """Every feature the key may read, by name, in one request (``GET /api/v1/config``),
        cached, revalidated and fallen back on exactly like ``config``; the fallback is
        the whole bundle. Handy to warm the cache at start-up."""
        bundle = (
            {key: self._fallback[key] for key in ("environment", "revision", "features")}
            if self._fallback
            else None
        )
        data, source, etag = self._read("all", "/api/v1/config", bundle, "the configuration")
        return {
            name: FeatureConfig(answer, source, etag)
            for name, answer in (data.get("features") or {}).items()
        }

    def _read(
        self, key: str, path: str, fallback: dict[str, Any] | None, what: str
    ) -> tuple[dict[str, Any], str, str | None]:
        """(data, source, ETag) of one cached GET: the rules ``config`` describes."""
        now = self._clock()
        with self._lock:
            entry = self._cache.get(key)
        if entry is not None and not entry.from_fallback and now - entry.fetched_at < entry.max_age:
            return entry.data, "cache", entry.etag
        if entry is not None and now < entry.retry_at:
            return self._fall_back(key, entry, fallback, what, now, None)
        if entry is None and now < self._unreachable_until:
            return self._fall_back(key, None, fallback, what, now, None)
        headers = {"If-None-Match": entry.etag} if entry is not None and entry.etag else {}
        try:
            answer = self._transport.request("GET", path, self.timeout, headers=headers)
        except ConsoleUnavailable as error:
            return self._fall_back(key, entry, fallback, what, now, error)
        if answer.status == 304 and entry is not None and entry.etag:
            max_age, stale, _ = cache_directives(answer.headers.get("cache-control"))
            renewed = answer.headers.get("etag", entry.etag)
            with self._lock:
                self._cache[key] = _Entry(entry.data, renewed, now, max_age, stale)
            return entry.data, "console", renewed
        if answer.status == 200:
            data = answer.json().get("data")
            if not isinstance(data, dict):
                failure = ConsoleUnavailable(f"GET {path}: the answer is not a configuration")
                return self._fall_back(key, entry, fallback, what, now, failure)
            max_age, stale, storable = cache_directives(answer.headers.get("cache-control"))
            etag = answer.headers.get("etag")
            if storable:
                with self._lock:
                    self._cache[key] = _Entry(data, etag, now, max_age, stale)
            return data, "console", etag
        if answer.status == 429 or answer.status >= 500:
            failure = ConsoleUnavailable(f"GET {path}: the console answered {answer.status}")
            return self._fall_back(key, entry, fallback, what, now, failure)
        raise _refusal(answer)

    def _fall_back(
        self,
        key: str,
        entry: _Entry | None,
        fallback: dict[str, Any] | None,
        what: str,
        now: float,
        error: ConsoleUnavailable | None,
    ) -> tuple[dict[str, Any], str, str | None]:
        if error is not None:
            self._unreachable_until = now + self.retry_interval
        if entry is not None and (
            entry.from_fallback or now - entry.fetched_at <= entry.max_age + entry.stale_if_error
        ):
            if error is not None:
                entry.retry_at = now + self.retry_interval
            return entry.data, "fallback" if entry.from_fallback else "stale", entry.etag
        if fallback is not None:
            with self._lock:
                self._cache[key] = _Entry(
                    fallback, None, now, 0.0, 0.0, True, now + self.retry_interval
                )
            return fallback, "fallback", None
        reason = f": {error}" if error is not None else " (it failed less than retry_interval ago)"
        raise ConsoleUnavailable(
            f"no {what}: the console is unavailable{reason}, nothing is cached and the "
            "fallback bundle has none"
        )

    def variant(self, feature: str, experiment_id: str, subject: str) -> Variant | None:
        """The variant ``subject`` (a user or session id) gets in a running experiment of
        the feature, computed locally with the console's hash (no request beyond
        ``config``). None when the experiment is not running: serve the configuration."""
        return self.config(feature).variant(str(experiment_id), subject)

    # --- usage ------------------------------------------------------------------------

    def record(
        self,
        feature: str | None = None,
        model: str | None = None,
        *,
        config: FeatureConfig | None = None,
        variant: Variant | None = None,
        prompt_name: str | None = None,
        id: str | None = None,
        timestamp: datetime | None = None,
        cost_usd: Decimal | str | None = None,
        reservation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        **fields: Any,
    ) -> str:
        """Queue one usage event and return its idempotency id (a new UUID unless ``id``
        is given). ``config`` (and ``variant``) tag the event with the model, prompt
        version, configuration revision and experiment variant that answer named;
        explicit arguments win. Other fields (``input_tokens``, ``output_tokens``,
        ``latency_ms``, ``status``, ``user_id``, …) go as the usage API names them.
        Raises ``QueueFull`` (the event is not queued) when ``max_queue`` events wait."""
        event: dict[str, Any] = config.usage_fields(variant, prompt_name) if config else {}
        tags = dict(event.pop("metadata", {}))
        if feature is not None:
            event["feature"] = feature
        if model is not None:
            event["model"] = model
        for name in ("feature", "model"):
            if not event.get(name):
                raise ValueError(f"{name} is required (or pass config= an answer naming it)")
        event.update({name: value for name, value in fields.items() if value is not None})
        if metadata or tags:
            event["metadata"] = {**tags, **(metadata or {})}
        if cost_usd is not None:
            event["cost_usd"] = str(Decimal(str(cost_usd)))
        if reservation_id is not None:
            event["reservation_id"] = str(reservation_id)
        event["id"] = id or str(uuid.uuid4())
        moment = timestamp or datetime.now(UTC)
        if moment.tzinfo is None:
            raise ValueError("timestamp must carry a time zone")
        event["timestamp"] = moment.isoformat()
        self._recorder.put(event)
        return str(event["id"])

    def flush(self, timeout: float | None = None) -> bool:
        """Send every queued event now; True when none is left, False after ``timeout``."""
        return self._recorder.flush(timeout)

    def close(self, timeout: float = 5.0) -> int:
        """Send what is queued (for at most ``timeout`` seconds) and stop; the number of
        events that could not be delivered (``undelivered``). Runs at interpreter exit."""
        return self._recorder.close(timeout)

    @property
    def pending(self) -> int:
        return self._recorder.pending

    @property
    def rejected(self) -> list[Rejected]:
        """Events the console refused (the last 1,000), with its reasons."""
        return list(self._recorder.rejected)

    @property
    def undelivered(self) -> list[dict[str, Any]]:
        """Events still unsent when ``close`` gave up."""
        return list(self._recorder.undelivered)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(self.exit_timeout)

    # --- budgets ----------------------------------------------------------------------

    def reserve(
        self,
        feature: str,
        estimated_cost_usd: Decimal | str | None = None,
        *,
        model: str | None = None,
        input_tokens: int | None = None,
        max_output_tokens: int | None = None,
    ) -> Reservation:
        """Set money aside under the feature's hard budgets before a request: either an
        estimated cost, or a model and token counts the console prices. ``BudgetExhausted``
        (with ``resets_at``) when a hard budget has no room; ``ConsoleUnavailable`` when
        the console cannot say within ``timeout`` (the application decides whether to go
        ahead: this client does not guess)."""
        body: dict[str, Any] = {"feature": feature}
        if estimated_cost_usd is not None:
            body["estimated_cost_usd"] = str(Decimal(str(estimated_cost_usd)))
        else:
            if model is None or input_tokens is None or max_output_tokens is None:
                raise ValueError(
                    "give estimated_cost_usd, or model, input_tokens and max_output_tokens"
                )
            body.update(
                {
                    "model": model,
                    "input_tokens": input_tokens,
                    "max_output_tokens": max_output_tokens,
                }
            )
        answer = self._transport.request("POST", "/api/v1/budgets/reserve", self.timeout, body=body)
        if answer.status == 429 or answer.status >= 500:
            raise ConsoleUnavailable(f"POST /api/v1/budgets/reserve: HTTP {answer.status}")
        if answer.status != 200:
            raise _refusal(answer)
        data = answer.json().get("data") or {}
        identifier = data.get("reservation_id")
        return Reservation(
            id=str(identifier) if identifier else None,
            reserved_usd=Decimal(str(data.get("reserved_usd", "0"))),
            expires_at=_parse_time(data.get("expires_at")),
        )


def _refusal(answer: Answer) -> ApiError:
    body = answer.json()
    code = body.get("code")
    message = str(body.get("details") or body.get("error") or f"HTTP {answer.status}")
    fields = body.get("fields") if isinstance(body.get("fields"), dict) else None
    if answer.status == 401:
        return Unauthorized(message, 401, code, fields, body)
    if answer.status == 402 and code == "budget_exhausted":
        return BudgetExhausted(message, _parse_time(body.get("resets_at")), body)
    if answer.status == 403:
        kind = FeatureNotAllowed if code == "feature_not_allowed" else Forbidden
        return kind(message, 403, code, fields, body)
    if answer.status == 404:
        return UnknownFeature(message, 404, code, fields, body)
    return InvalidRequest(message, answer.status, code, fields, body)
