"""Provider health: thresholds at their boundaries, the score, the windows, the HTTP check
against a local server, the CLI and the features affected with alternatives."""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.usage_rows import roll_up
from webapp.models import ProviderHealthLog, UsageLog
from webapp.services.core.errors import NotFound, ValidationFailed
from webapp.services.health import provider_health as ph

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

LIMITS = ph.Thresholds(
    short_minutes=15,
    long_minutes=60,
    min_requests=5,
    degraded_error_rate=Decimal("5"),
    down_error_rate=Decimal("25"),
    degraded_p95_ms=Decimal("5000"),
    down_p95_ms=Decimal("15000"),
    check_timeout_seconds=5.0,
    check_failure_penalty=50,
)
PID = uuid.UUID(int=1)


def window(requests: int, failures: int = 0, p95: str | None = "100") -> ph.WindowUsage:
    return ph.WindowUsage(15, requests, failures, None if p95 is None else Decimal(p95))


def judged(short: ph.WindowUsage, long: ph.WindowUsage | None = None, check=None):
    long = long or ph.WindowUsage(60)
    return ph.judge(PID, short, long, check, LIMITS, NOW)


# --- thresholds at their boundaries (pure) -----------------------------------------


@pytest.mark.parametrize(
    "requests, failures, expected",
    [
        (10000, 499, "healthy"),  # 4.99 %
        (100, 5, "degraded"),  # exactly 5 %
        (10000, 2499, "degraded"),  # 24.99 %
        (100, 25, "down"),  # exactly 25 %
        (100, 100, "down"),
    ],
)
def test_error_rate_thresholds(requests, failures, expected):
    assert ph.usage_status(window(requests, failures), LIMITS) == expected


def test_error_rate_is_compared_before_rounding():
    # 1 of 20,001 below 5 % rounds to 5.00 % for display, but is still below the threshold.
    usage = window(20001, 1000)
    assert usage.error_rate == Decimal("5.00")
    assert ph.usage_status(usage, LIMITS) == "healthy"


@pytest.mark.parametrize(
    "p95, expected",
    [
        ("4999.9", "healthy"),
        ("5000", "degraded"),
        ("14999.9", "degraded"),
        ("15000", "down"),
    ],
)
def test_latency_thresholds(p95, expected):
    assert ph.usage_status(window(100, 0, p95), LIMITS) == expected


def test_worst_of_error_rate_and_latency_wins():
    assert ph.usage_status(window(100, 25, "10"), LIMITS) == "down"
    assert ph.usage_status(window(100, 0, "15000"), LIMITS) == "down"
    assert ph.usage_status(window(100, 5, "5000"), LIMITS) == "degraded"


def test_minimum_traffic_boundary_and_window_fallback():
    # 4 finished requests (one below the minimum) are not judged, whatever they say.
    assert judged(window(4, 4)).status == "unknown"
    assert judged(window(4, 4)).score is None
    # Exactly the minimum is judged.
    five = judged(window(5, 5))
    assert five.status == "down" and five.judged_minutes == 15
    # A thin short window falls back to the long one.
    long = ph.WindowUsage(60, 40, 2, Decimal("100"))
    fallback = judged(window(3, 3), long)
    assert fallback.judged_minutes == 60 and fallback.status == "degraded"  # 5 %
    assert fallback.error_rate == Decimal("5.00")


@pytest.mark.parametrize(
    "requests, failures, p95, score",
    [
        (100, 0, "0", 100),
        (100, 0, "100", 100),  # 100 − 40·(100/15000) = 99.73 → 100
        (100, 5, "0", 88),  # 100 − 60·(5/25)
        (100, 25, "0", 40),  # the down error rate costs 60
        (100, 50, "0", 40),  # capped at the down rate
        (100, 0, "15000", 60),  # the down latency costs 40
        (100, 0, "30000", 60),
        (100, 25, "15000", 0),
        (100, 10, "7500", 56),  # 100 − 24 − 20
    ],
)
def test_score_formula(requests, failures, p95, score):
    assert ph.usage_score(window(requests, failures, p95), LIMITS) == score


def test_http_check_outcomes_in_the_judgement():
    ok = ph.CheckResult("http://x", True, 200, 5)
    failed = ph.CheckResult("http://x", False, 500, 5, "HTTP 500")
    # No usage: a passing check is healthy 100, a failing one down 0, none unknown.
    assert (judged(window(0), check=ok).status, judged(window(0), check=ok).score) == (
        "healthy",
        100,
    )
    assert (judged(window(0), check=failed).status, judged(window(0), check=failed).score) == (
        "down",
        0,
    )
    # Healthy usage with a failing check: degraded, 50 points off.
    mixed = judged(window(100, 0, "0"), check=failed)
    assert (mixed.status, mixed.score) == ("degraded", 50)
    # Degraded usage with a failing check: down.
    assert judged(window(100, 5, "0"), check=failed).status == "down"
    # A passing check does not hide bad usage.
    assert judged(window(100, 25, "0"), check=ok).status == "down"


# --- usage from the database --------------------------------------------------------


@pytest.fixture
def world(db):
    openai = factories.provider("openai", display_name="OpenAI")
    anthropic = factories.provider("anthropic", display_name="Anthropic")
    google = factories.provider("google", display_name="Google")
    gpt4 = factories.model(openai, "gpt-4", display_name="GPT-4")
    mini = factories.model(
        openai,
        "gpt-4o-mini",
        display_name="GPT-4o mini",
        input_price_per_million=Decimal("0.15"),
        output_price_per_million=Decimal("0.60"),
    )
    claude = factories.model(
        anthropic,
        "claude",
        display_name="Claude",
        input_price_per_million=Decimal("3"),
        output_price_per_million=Decimal("15"),
    )
    gemini = factories.model(
        google,
        "gemini",
        display_name="Gemini",
        input_price_per_million=Decimal("0.50"),
        output_price_per_million=Decimal("0.30"),  # 0.80 in + out: just above GPT-4o mini
    )
    vision = factories.model(google, "vision", display_name="Vision", model_type="vision")
    chatbot = factories.feature("chatbot", display_name="Chatbot")
    search = factories.feature("search", display_name="Search")
    factories.assignment(chatbot, claude, "production")
    factories.assignment(chatbot, claude, "staging")
    factories.assignment(search, gpt4, "production")
    factories.assignment(search, claude, "development", is_active=False, deactivated_at=NOW)
    db.session.commit()
    return {
        "openai": openai,
        "anthropic": anthropic,
        "google": google,
        "gpt4": gpt4,
        "mini": mini,
        "claude": claude,
        "gemini": gemini,
        "vision": vision,
        "chatbot": chatbot,
        "search": search,
    }


def add_usage(db, model, minutes_ago: float, status: str = "success", ms: int = 100, n: int = 1):
    for _ in range(n):
        db.session.add(
            UsageLog(
                model_id=model.id,
                status=status,
                response_time_ms=ms,
                created_at=NOW - timedelta(minutes=minutes_ago),
            )
        )
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups


def test_windows_count_finished_requests_per_provider(db, world):
    add_usage(db, world["gpt4"], 5, n=8)
    add_usage(db, world["mini"], 10, "error", n=1)
    add_usage(db, world["gpt4"], 14, "timeout", n=1)
    add_usage(db, world["gpt4"], 30, "error", n=10)  # long window only
    add_usage(db, world["gpt4"], 61, "error", n=50)  # outside both windows
    add_usage(db, world["gpt4"], 1, "pending", ms=0, n=20)  # no outcome yet: left out
    add_usage(db, world["gpt4"], -1, "error", n=5)  # after "now": left out
    health = ph.current_health_by_provider(NOW)
    openai = health[world["openai"].id]
    assert (openai.short.requests, openai.short.failures) == (10, 2)
    assert (openai.long.requests, openai.long.failures) == (20, 12)
    assert openai.judged_minutes == 15 and openai.error_rate == Decimal("20.00")
    assert openai.status == "degraded"
    assert openai.requests_per_minute == Decimal("0.67")  # 10 / 15
    assert health[world["google"].id].status == "unknown"


def test_p95_latency_per_window_on_both_databases(db, world):
    for ms in range(100, 2100, 100):  # 20 values: 100 … 2000
        add_usage(db, world["claude"], 3, ms=ms)
    add_usage(db, world["claude"], 45, ms=9000, n=20)
    health = ph.current_health_by_provider(NOW)[world["anthropic"].id]
    # The latency histogram's p95: rank 0.95 · 20 = 19; 14 requests lie below 1500 ms and
    # five in [1500, 2000) → 1500 + 500 · (19 − 14) / 5 = 2000.
    assert health.short.p95_ms == Decimal("2000.0")
    # 40 requests, rank 38: 20 below 7500, 20 in [7500, 10000) → 7500 + 2500 · 18 / 20.
    assert health.long.p95_ms == Decimal("9750.0")
    assert health.status == "healthy" and health.p95_ms == Decimal("2000.0")


def count_statements(db) -> int:
    from sqlalchemy import event

    statements = []

    def count(*args):
        statements.append(args)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        health = ph.current_health_by_provider(NOW)
        ph.affected_features_by_provider(health)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(statements)


def test_current_health_uses_a_bounded_number_of_queries(db, world):
    add_usage(db, world["gpt4"], 2, n=6)
    few = count_statements(db)
    for index in range(20):
        owner = factories.provider(f"extra-{index}")
        add_usage(db, factories.model(owner, f"m-{index}"), 2, n=6)
    db.session.commit()
    # Seven queries (plus the role switch PostgreSQL does at a transaction's start),
    # however many providers there are.
    assert count_statements(db) == few <= 8


# --- affected features and alternatives --------------------------------------------


def test_affected_features_with_the_cheapest_healthy_alternative(db, world):
    add_usage(db, world["claude"], 2, "error", n=10)  # Anthropic down
    add_usage(db, world["gpt4"], 2, n=10)  # OpenAI healthy
    add_usage(db, world["gemini"], 2, n=10)  # Google healthy
    health = ph.current_health_by_provider(NOW)
    assert health[world["anthropic"].id].status == "down"
    affected = ph.affected_features(world["anthropic"].id, health)
    assert [(a.feature_name, a.environment) for a in affected] == [
        ("chatbot", "production"),
        ("chatbot", "staging"),
    ]  # the inactive development assignment is history, not affected
    alternative = affected[0].alternative
    # GPT-4o mini (0.75 per million in + out) beats Gemini (0.80); Claude is the sick one.
    assert alternative.model_display_name == "GPT-4o mini"
    assert alternative.price_per_million == Decimal("0.75")
    assert alternative.provider_display_name == "OpenAI"


def test_alternatives_skip_unhealthy_providers_and_unavailable_models(db, world):
    add_usage(db, world["claude"], 2, "error", n=10)
    add_usage(db, world["gpt4"], 2, "error", n=10)  # OpenAI down too
    add_usage(db, world["gemini"], 2, n=10)
    health = ph.current_health_by_provider(NOW)
    affected = ph.affected_features_by_provider(health)
    assert affected[world["anthropic"].id][0].alternative.model_display_name == "Gemini"
    # Search runs on OpenAI (GPT-4): Gemini is the only healthy llm elsewhere.
    assert affected[world["openai"].id][0].alternative.model_display_name == "Gemini"
    world["gemini"].status = "deprecated"
    db.session.commit()
    affected = ph.affected_features_by_provider(health)
    assert affected[world["anthropic"].id][0].alternative is None
    assert world["google"].id not in affected  # it serves no feature


def test_a_provider_of_unknown_health_is_not_suggested(db, world):
    add_usage(db, world["claude"], 2, "error", n=10)
    add_usage(db, world["gpt4"], 2, "error", n=10)  # Google has no traffic: unknown
    health = ph.current_health_by_provider(NOW)
    assert health[world["google"].id].status == "unknown"
    assert ph.affected_features(world["anthropic"].id, health)[0].alternative is None


def test_affected_features_of_an_unused_provider_is_empty(db, world):
    assert ph.affected_features(world["google"].id) == []


# --- the HTTP check against a local server -----------------------------------------


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(1.5)
        code = 500 if self.path == "/fail" else 200
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"broken")

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def server(app, monkeypatch) -> Iterator[str]:
    # A local server is a loopback address: allowed only with the setting on.
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_PROVIDER_URLS", True)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_http_check_success(server):
    result = ph.run_http_check(f"{server}/ok", 2, allow_private=True)
    assert result.ok and result.status_code == 200 and result.response_time_ms is not None


def test_http_check_server_error(server):
    result = ph.run_http_check(f"{server}/fail", 2, allow_private=True)
    assert not result.ok and result.status_code == 500 and result.error == "HTTP 500"


def test_http_check_timeout(server):
    started = time.perf_counter()
    result = ph.run_http_check(f"{server}/slow", 0.3, allow_private=True)
    assert time.perf_counter() - started < 1.4
    assert not result.ok and result.status_code is None and "timed out" in result.error


def test_http_check_connection_refused_and_other_schemes():
    assert not ph.run_http_check("http://127.0.0.1:9/", 1, allow_private=True).ok
    assert ph.run_http_check("file:///etc/passwd", 1).error == "not an http(s) URL"


# --- recording: the service and the CLI --------------------------------------------


@pytest.fixture
def cli(app, db):
    runner = app.test_cli_runner()

    def run(*args: str):
        return contextvars.Context().run(runner.invoke, args=list(args))

    return run


def logs(db) -> list[ProviderHealthLog]:
    return list(db.session.scalars(select(ProviderHealthLog).order_by(ProviderHealthLog.status)))


def test_cli_records_one_row_per_provider_with_http_checks(cli, db, world, server):
    world["openai"].health_check = {"url": f"{server}/ok"}
    world["anthropic"].health_check = {"url": f"{server}/fail"}
    db.session.commit()
    now = datetime.now(UTC)
    for _ in range(10):
        db.session.add(
            UsageLog(
                model_id=world["gpt4"].id,
                status="success",
                response_time_ms=120,
                created_at=now - timedelta(minutes=1),
            )
        )
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    result = cli("providers", "check")
    assert result.exit_code == 0, result.output
    assert "Recorded 3 health check(s)." in result.output
    db.session.expire_all()
    rows = {row.provider_id: row for row in db.session.scalars(select(ProviderHealthLog))}
    assert len(rows) == 3
    openai = rows[world["openai"].id]
    assert openai.status == "healthy" and openai.health_score == 100
    # The stored latency is the window's p95: 120 ms lies in [100, 150) → 100 + 50 · 0.95.
    assert openai.response_time_ms == 148 and openai.error_rate == Decimal("0.00")
    assert openai.throughput == 1  # 10 requests / 15 minutes, rounded
    assert openai.details["http_check"]["ok"] is True
    anthropic = rows[world["anthropic"].id]
    assert anthropic.status == "down" and anthropic.health_score == 0
    assert anthropic.details["http_check"]["status_code"] == 500
    google = rows[world["google"].id]  # no usage, no check: unknown, stored healthy/NULL
    assert google.status == "healthy" and google.health_score is None
    assert google.details["status"] == "unknown"
    assert "anthropic: down (score 0), HTTP check failed: HTTP 500" in result.output


def test_cli_without_http_checks_and_twice(cli, db, world, server):
    world["anthropic"].health_check = {"url": f"{server}/fail"}
    db.session.commit()
    assert cli("providers", "check", "--no-http").exit_code == 0
    assert cli("providers", "check", "--no-http").exit_code == 0
    assert db.session.scalar(select(func.count()).select_from(ProviderHealthLog)) == 6
    assert all("http_check" not in row.details for row in logs(db))


def test_recorded_http_check_counts_in_the_current_health(db, world, server):
    world["anthropic"].health_check = {"url": f"{server}/fail", "timeout_seconds": 2}
    db.session.commit()
    ph.record_health_checks(NOW - timedelta(minutes=1))
    health = ph.current_health_by_provider(NOW)
    assert health[world["anthropic"].id].status == "down"
    assert health[world["anthropic"].id].check.status_code == 500
    # A check older than the short window is stale and no longer counts.
    later = ph.current_health_by_provider(NOW + timedelta(minutes=20))
    assert later[world["anthropic"].id].status == "unknown"


# --- the timeline -------------------------------------------------------------------


def add_log(db, provider, minutes_ago: float, status="healthy", score=90, ms=100, rate="1.00"):
    db.session.add(
        ProviderHealthLog(
            provider_id=provider.id,
            status=status,
            health_score=score,
            response_time_ms=ms,
            error_rate=None if rate is None else Decimal(rate),
            throughput=10,
            checked_at=NOW - timedelta(minutes=minutes_ago),
        )
    )
    db.session.commit()


def test_history_returns_each_check_within_the_hours(db, world):
    add_log(db, world["openai"], 30, score=95)
    add_log(db, world["openai"], 90, status="degraded", score=60)
    add_log(db, world["openai"], 10, score=None, ms=None, rate=None)  # a no-data check
    add_log(db, world["openai"], 200)  # older than 3 hours
    add_log(db, world["anthropic"], 5)  # another provider
    history = ph.health_history(world["openai"].id, 3, NOW)
    assert history.resolution == "check"
    assert [(p.status, p.health_score) for p in history.points] == [
        ("degraded", Decimal(60)),
        ("healthy", Decimal(95)),
        ("unknown", None),
    ]


def test_long_history_is_averaged_per_hour_with_the_worst_status(db, world):
    base = NOW - timedelta(days=3)
    for minute, status, score in ((5, "healthy", 90), (20, "down", 10), (40, "healthy", 80)):
        db.session.add(
            ProviderHealthLog(
                provider_id=world["openai"].id,
                status=status,
                health_score=score,
                response_time_ms=100,
                error_rate=Decimal("2.00"),
                throughput=4,
                checked_at=base.replace(minute=minute),
            )
        )
    db.session.commit()
    history = ph.health_history(world["openai"].id, 96, NOW)
    assert history.resolution == "hour"
    [point] = history.points
    assert point.status == "down" and point.health_score == Decimal("60.0")
    assert point.checks == 3 and point.at == base.replace(minute=0)
    assert point.error_rate == Decimal("2.00")


@pytest.mark.parametrize("hours", [0, 721, -1])
def test_history_hours_out_of_range(db, world, hours):
    with pytest.raises(ValidationFailed) as caught:
        ph.health_history(world["openai"].id, hours, NOW)
    assert "hours" in caught.value.errors


def test_history_of_an_unknown_provider(db):
    with pytest.raises(NotFound):
        ph.health_history(uuid.uuid4(), 24, NOW)
    with pytest.raises(NotFound):
        ph.provider_page(uuid.uuid4(), 24, now=NOW)  # provider_health() was dead code (issue 13)


# --- the latest check per provider: one index probe each ----------------------------


def _check(db, provider, at: datetime, status: str = "healthy", score: int | None = 90):
    row = ProviderHealthLog(
        provider_id=provider.id, status=status, health_score=score, checked_at=at
    )
    db.session.add(row)
    db.session.flush()
    return row


def test_latest_checks_take_the_newest_row_within_the_bounds(db, world):
    openai, anthropic = world["openai"], world["anthropic"]
    _check(db, openai, NOW - timedelta(hours=3), "down")
    _check(db, openai, NOW - timedelta(hours=1), "degraded")
    _check(db, openai, NOW + timedelta(minutes=5), "healthy")  # after `until`: not seen
    # Two checks at one instant: the provider still counts once (the larger id wins).
    tied = [_check(db, anthropic, NOW - timedelta(hours=2)) for _ in range(2)]
    db.session.commit()

    def latest(until, since=None):
        query = ph.latest_checks(until, since, ProviderHealthLog.status, ProviderHealthLog.id)
        return {
            provider: (status, row_id) for provider, status, row_id in db.session.execute(query)
        }

    now = latest(NOW)
    assert now[openai.id][0] == "degraded"
    assert now[anthropic.id] == ("healthy", max(row.id for row in tied))
    assert world["google"].id not in now  # no check at all: no row
    earlier = latest(NOW - timedelta(hours=2, minutes=30))
    assert set(earlier) == {openai.id} and earlier[openai.id][0] == "down"
    assert set(latest(NOW, since=NOW - timedelta(minutes=90))) == {openai.id}


def test_latest_checks_probe_the_index_on_postgresql(db, world, dialect):
    if dialect != "postgresql":
        pytest.skip("query plans are PostgreSQL's")
    from sqlalchemy import text

    for minutes in range(0, 3000, 3):
        for name in ("openai", "anthropic", "google"):
            _check(db, world[name], NOW - timedelta(minutes=minutes))
    db.session.commit()
    db.session.execute(text("ANALYZE provider_health_logs"))
    query = ph.latest_checks(NOW - timedelta(days=1), None, ProviderHealthLog.status)
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    plan = "\n".join(db.session.scalars(text(f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}")))
    # A backward walk of an index per provider, stopped by the LIMIT: no scan, no GROUP BY.
    assert "Index Scan Backward using ix_provider_health_logs_" in plan, plan
    assert "Seq Scan on provider_health_logs" not in plan, plan
    assert "Aggregate" not in plan and "Hash" not in plan, plan
