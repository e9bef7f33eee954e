"""Commands of the sync workers, registered on the ``compliance`` group:

    compliance sync zenefits|classroom|all   one sync now, with a progress bar and a summary
    compliance worker                        the long-running worker (schedule, requests, jobs)
    compliance fake-upstreams                fake Zenefits + Google Classroom on 127.0.0.1

Exit status of ``sync``: 0 completed, 2 partial (something was not fetched or not applied),
1 failed or refused. Every refusal prints ``error: ...`` lines, one per problem.
"""

from __future__ import annotations

import getpass
import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from types import FrameType
from typing import IO, Any, ParamSpec, TypeVar

import click
import psycopg

from compliance.settings import SettingsError
from sync.runner import RunSummary, SyncRunner, What
from sync.settings import REQUIRED_FOR, load_sync_settings
from sync.worker import Worker

__all__ = ["ConsoleProgress", "fake_upstreams_command", "sync_group", "worker_command"]

P = ParamSpec("P")
R = TypeVar("R")
REPO_ROOT = Path(__file__).resolve().parent.parent
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Expected failures become ``error:`` lines and exit status 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SettingsError as exc:
            for line in exc.problems:
                click.echo(f"error: {line}", err=True)
            sys.exit(1)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _fail(f"cannot reach the database: {first}")
        except psycopg.Error as exc:
            text = exc.diag.message_primary or str(exc).strip()
            hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
            _fail(f"{text}{hint}")
        raise AssertionError("unreachable")

    return wrapper


def _logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=LOG_FORMAT)
    for noisy in ("httpx", "httpcore", "googleapiclient.discovery", "google.auth"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- progress --------------------------------------------------------------------------------


class ConsoleProgress:
    """A one-line progress bar on a terminal: part, resource, pages, records, seconds. The
    totals are not known in advance (neither API says), so the bar only shows it is moving.
    Elsewhere (a log, a pipe) one line per phase."""

    WIDTH = 20

    def __init__(self, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self.pages = 0
        self.records = 0
        self.part = ""
        self.kind = ""
        self._last = 0.0
        self._ticks = itertools.count()
        self._shown = False

    def phase(self, text: str) -> None:
        self.part = text
        self.kind = ""
        if not self.tty:
            click.echo(f"{time.monotonic() - self.started:7.1f} s  {text}", file=self.stream)
        self._render(force=True)

    def page(self, part: str, kind: str, records: int) -> None:
        self.pages += 1
        self.records += records
        self.part, self.kind = part, kind
        self._render()

    def done(self) -> None:
        if self.tty and self._shown:
            self._render(force=True)
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False

    def _render(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        tick = next(self._ticks) % (2 * self.WIDTH - 8)
        pos = tick if tick < self.WIDTH - 4 else 2 * self.WIDTH - 8 - tick
        bar = " " * pos + "####" + " " * (self.WIDTH - 4 - pos)
        line = (
            f"\r[{bar}] {self.part:<20.20} {self.kind:<20.20} "
            f"pages {self.pages:>6,}  records {self.records:>9,}  {now - self.started:6.1f} s"
        )
        self.stream.write(line)
        self.stream.flush()
        self._shown = True


# -- compliance sync -------------------------------------------------------------------------


@click.group("sync")
def sync_group() -> None:
    """Sync now: the Zenefits roster, Google Classroom results, or both."""


def _sync_command(what: What, help_text: str) -> None:
    @sync_group.command(what, help=help_text)
    @click.option("--org", default=None, help="Organisation slug (default COMPLIANCE_ORG_SLUG).")
    @click.option(
        "--wait/--no-wait",
        default=False,
        help="Wait for a sync of the organisation that is running (default: refuse).",
    )
    @click.option("--progress/--no-progress", default=True, help="Show the progress bar.")
    @click.option("--log-level", default="WARNING", show_default=True, help="Logging level.")
    @_friendly
    def command(org: str | None, wait: bool, progress: bool, log_level: str) -> None:
        _logging(log_level)
        overrides = {"compliance_org_slug": org} if org else {}
        settings = load_sync_settings(*REQUIRED_FOR[what], **overrides)
        assert settings.worker_dsn is not None
        with psycopg.connect(settings.worker_dsn, autocommit=True) as conn:
            runner = SyncRunner(
                conn,
                settings,
                progress=ConsoleProgress(enabled=None if progress else False),
            )
            summary = runner.run(what, wait=wait, triggered_by=f"cli ({getpass.getuser()})")
        _report(summary)

    del command


def _report(summary: RunSummary) -> None:
    for line in summary.lines():
        click.echo(line)
    if summary.status == "failed":
        sys.exit(1)
    if summary.status == "partial":
        sys.exit(2)


_sync_command("zenefits", "Sync the Zenefits roster into departments, locations and employees.")
_sync_command(
    "classroom", "Sync Google Classroom course work and results into modules and assignments."
)
_sync_command("all", "Sync Zenefits, then Google Classroom, in one run.")


# -- compliance worker -----------------------------------------------------------------------


@click.command("worker")
@click.option("--org", default=None, help="Organisation slug (default COMPLIANCE_ORG_SLUG).")
@click.option("--once", is_flag=True, help="Serve what is due or queued now, then exit.")
@click.option("--log-level", default="INFO", show_default=True, help="Logging level.")
@_friendly
def worker_command(org: str | None, once: bool, log_level: str) -> None:
    """Run the sync worker: a full sync every COMPLIANCE_SYNC_INTERVAL_HOURS, queued requests
    as they arrive, and the daily SQL jobs; stops cleanly on SIGTERM."""
    _logging(log_level)
    overrides = {"compliance_org_slug": org} if org else {}
    settings = load_sync_settings(*REQUIRED_FOR["worker"], **overrides)
    worker = Worker(settings)
    worker.install_signal_handlers()
    sys.exit(worker.run(once=once))


# -- compliance fake-upstreams ---------------------------------------------------------------


def _fakes_module() -> Any:
    if not (REPO_ROOT / "tests" / "fakes" / "__init__.py").is_file():
        _fail("the fake upstreams live in the repository's tests/fakes/: run from a checkout")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import tests.fakes as fakes
    import tests.fakes.dataset as dataset

    return fakes, dataset


def _seeded_demo() -> tuple[Any, Any]:
    """The seeded demo's calendar day and Classroom results, when DATABASE_URL has them (so
    the fake Classroom holds exactly the seed's results), else (None, None)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return None, None
    from compliance.seed import demo_upstream_state

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            state = demo_upstream_state(conn)
    except psycopg.Error as exc:
        click.echo(f"fake-upstreams: the demo's results are not readable ({exc}); serving none",
                   err=True)  # fmt: skip
        return None, None
    return state if state is not None else (None, None)


@click.command("fake-upstreams")
@click.option("--zenefits-port", default=8081, show_default=True, type=click.IntRange(0, 65535))
@click.option("--classroom-port", default=8082, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--people",
    default=None,
    type=click.IntRange(1, 1_000_000),
    help="A synthetic company of this many people (default: the demo data set of seed-demo).",
)
@click.option(
    "--stripe-port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the fake Stripe (0: a free one; the printed STRIPE_API_BASE names it).",
)
@click.option(
    "--stripe-webhook-url",
    default="http://127.0.0.1:8080/webhooks/stripe",
    show_default=True,
    help="Where the fake Stripe delivers its signed webhooks (the web app's endpoint).",
)
@click.option("--courseworks", default=4, show_default=True, type=click.IntRange(0, 1000))
@click.option("--latency-ms", default=0, show_default=True, type=click.IntRange(0, 60_000))
@click.option(
    "--org",
    default=None,
    help="Organisation slug to print in the environment (default: the demo's).",
)
@click.option(
    "--key-dir",
    default=str(REPO_ROOT / ".data" / "fake-upstreams"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the throwaway service-account key.",
)
@click.option(
    "--env-file",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the environment (KEY=value lines) to this file.",
)
def fake_upstreams_command(
    zenefits_port: int,
    classroom_port: int,
    stripe_port: int,
    stripe_webhook_url: str,
    people: int | None,
    courseworks: int,
    latency_ms: int,
    org: str | None,
    key_dir: Path,
    env_file: Path | None,
) -> None:
    """Serve a fake Zenefits, a fake Google Classroom and a fake Stripe on 127.0.0.1 until Ctrl-C.

    Prints the environment that points `compliance sync` / `compliance worker` (and the web
    app's billing) at them. Opening a Checkout session's url pays it: the fake Stripe then
    delivers the signed webhooks to --stripe-webhook-url.
    Faults and data edits: POST /_fake/faults, /_fake/people/<id>, /_fake/submissions
    (see tests/fakes/)."""
    fakes, dataset = _fakes_module()
    if people is None:
        data = dataset.demo(*_seeded_demo())
    else:
        data = dataset.synthetic(people, courseworks=courseworks)
    ups = fakes.FakeUpstreams(
        data,
        zenefits_port=zenefits_port,
        classroom_port=classroom_port,
        latency=latency_ms / 1000,
        key_dir=key_dir,
    )
    import tests.fakes.stripe as fake_stripe

    try:
        ups.start()
    except OSError as exc:
        _fail(f"cannot listen on 127.0.0.1 ({exc.strerror}); pick other ports")
    try:
        stripe = fake_stripe.FakeStripe(port=stripe_port, webhook_url=stripe_webhook_url)
    except OSError as exc:
        ups.stop()
        _fail(f"the fake Stripe cannot listen on 127.0.0.1 ({exc.strerror}); pick another port")
    stripe.start()
    if org is None and people is None:
        from compliance.seed import DEMO_SLUG

        org = DEMO_SLUG
    env = ups.env(
        org,
        STRIPE_API_BASE=stripe.url,
        STRIPE_API_KEY=stripe.api_key,
        STRIPE_WEBHOOK_SECRET=stripe.webhook_secret,
    )
    lines = [f"export {key}={value}" for key, value in env.items()]
    if env_file is not None:
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    click.echo(
        f"fake Zenefits on {ups.zenefits.url} (company {data.company_id}, {len(data.people)} "
        f"people); fake Google Classroom on {ups.classroom.url} ({len(data.coursework)} course "
        f"works, {len(data.submissions)} submissions); fake Stripe on {stripe.url} (webhooks to "
        f"{stripe_webhook_url})"
    )
    for line in lines:
        click.echo(line)
    sys.stdout.flush()
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        stripe.stop()
        ups.stop()
        click.echo("fake upstreams stopped")
