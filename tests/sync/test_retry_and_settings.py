"""Retries (backoff, jitter, Retry-After, bounded attempts, stop) and settings validation."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from compliance.cli import cli
from sync.retry import FetchError, PermanentError, Retry, Stopped, TransientError, parse_retry_after
from sync.settings import REQUIRED_FOR, SettingsError, load_sync_settings

# -- retries ---------------------------------------------------------------------------------


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30)), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30)), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    low = Retry(base=1.0, cap=8.0, rand=lambda: 0.0)
    high = Retry(base=1.0, cap=8.0, rand=lambda: 0.999999)
    assert [low.delay(n, None) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [round(high.delay(n, None), 3) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_retry_after_wins_over_backoff_but_is_capped() -> None:
    retry = Retry(base=1.0, max_retry_after=60.0)
    assert retry.delay(1, 12.0) == 12.0
    assert retry.delay(1, 3600.0) == 60.0


def test_attempts_are_bounded_and_the_waits_honour_retry_after() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def failing() -> None:
        calls.append(1)
        raise TransientError("HTTP 429", retry_after=2.5)

    retry = Retry(attempts=4, sleep=slept.append)
    with pytest.raises(FetchError, match="gave up after 4 attempts"):
        retry.call(failing, "thing")
    assert len(calls) == 4
    assert slept == [2.5, 2.5, 2.5]


def test_a_permanent_error_is_not_retried() -> None:
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise PermanentError("HTTP 401", 401)

    with pytest.raises(FetchError, match="HTTP 401"):
        Retry(attempts=5, sleep=lambda _s: None).call(refused, "thing")
    assert calls == [1]


def test_a_transient_error_then_success_returns_the_value() -> None:
    answers: list[Any] = [TransientError("reset"), TransientError("timeout"), "ok"]

    def flaky() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    assert Retry(attempts=3, sleep=lambda _s: None).call(flaky, "thing") == "ok"


def test_stop_cuts_a_wait_short() -> None:
    stop = threading.Event()
    retry = Retry(attempts=3, base=30.0, stop=stop)

    def failing() -> None:
        stop.set()
        raise TransientError("HTTP 503")

    with pytest.raises(Stopped, match="while waiting to retry"):
        retry.call(failing, "thing")


# -- settings --------------------------------------------------------------------------------


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        "DATABASE_URL",
        "SYNC_DATABASE_URL",
        "COMPLIANCE_ORG_SLUG",
        "ZENEFITS_API_URL",
        "ZENEFITS_API_KEY",
        "ZENEFITS_COMPANY_ID",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
        "GOOGLE_CLASSROOM_COURSE_ID",
        "GOOGLE_CLASSROOM_API_URL",
        "GOOGLE_CLASSROOM_SUBJECT",
        "COMPLIANCE_SYNC_INTERVAL_HOURS",
        "COMPLIANCE_SYNC_RETRY_ATTEMPTS",
        "COMPLIANCE_SYNC_TIMEOUT_SECONDS",
    ]:
        monkeypatch.delenv(name, raising=False)


def test_each_missing_setting_is_named_on_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    with pytest.raises(SettingsError) as caught:
        load_sync_settings(*REQUIRED_FOR["all"])
    names = [line.split()[0] for line in caught.value.problems]
    assert names == [
        "DATABASE_URL",
        "COMPLIANCE_ORG_SLUG",
        "ZENEFITS_API_KEY",
        "ZENEFITS_COMPANY_ID",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
    ]
    assert all("is not set" in line for line in caught.value.problems)


def test_bad_values_get_one_clear_message_each_and_no_secret_is_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _clean_env(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", "postgresql://sync_worker@localhost/x")
    monkeypatch.setenv("COMPLIANCE_ORG_SLUG", "Bad Slug")
    monkeypatch.setenv("ZENEFITS_API_URL", "ftp://zenefits.example")
    monkeypatch.setenv("ZENEFITS_API_KEY", "zk-SECRET-TOKEN-123")
    monkeypatch.setenv("ZENEFITS_COMPANY_ID", "acme")
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_KEY", '{"private_key": "-----SECRET-KEY-----"')
    monkeypatch.setenv("COMPLIANCE_SYNC_INTERVAL_HOURS", "-1")
    monkeypatch.setenv("COMPLIANCE_SYNC_RETRY_ATTEMPTS", "many")

    result = CliRunner().invoke(cli, ["sync", "all"])

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    named = sorted(line.split()[1] for line in lines)
    assert named == sorted(
        [
            "COMPLIANCE_ORG_SLUG",
            "ZENEFITS_API_URL",
            "ZENEFITS_COMPANY_ID",
            "GOOGLE_SERVICE_ACCOUNT_KEY",
            "COMPLIANCE_SYNC_INTERVAL_HOURS",
            "COMPLIANCE_SYNC_RETRY_ATTEMPTS",
        ]
    )
    assert "SECRET" not in result.output
    assert "service-account" in result.output


def test_a_service_account_key_file_is_read_and_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_env(monkeypatch)
    missing = tmp_path / "nope.json"
    with pytest.raises(SettingsError, match="not found"):
        load_sync_settings(google_service_account_key=str(missing))
    incomplete = tmp_path / "key.json"
    incomplete.write_text(json.dumps({"type": "service_account", "client_email": "a@b.c"}))
    with pytest.raises(SettingsError, match="private_key, token_uri missing"):
        load_sync_settings(google_service_account_key=str(incomplete))
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "a@b.c",
                "private_key": "PRIVATE-KEY-MATERIAL",
                "token_uri": "http://127.0.0.1/token",
            }
        )
    )
    settings = load_sync_settings(
        google_service_account_key=str(good), google_classroom_course_id=" 123 , d:alias"
    )
    assert settings.service_account_info()["client_email"] == "a@b.c"
    assert settings.course_ids == ["123", "d:alias"]
    assert "PRIVATE-KEY-MATERIAL" not in repr(settings)


def test_sync_database_url_wins_over_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@h/db")
    monkeypatch.setenv("SYNC_DATABASE_URL", "postgresql://sync_worker@h/db")
    assert load_sync_settings().worker_dsn == "postgresql://sync_worker@h/db"
    monkeypatch.delenv("SYNC_DATABASE_URL")
    assert load_sync_settings().worker_dsn == "postgresql://postgres@h/db"
