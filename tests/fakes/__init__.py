"""Fake upstreams for the sync workers: Zenefits and Google Classroom (with its OAuth token
endpoint) as real HTTP servers on 127.0.0.1, fed from a :class:`~tests.fakes.dataset.Dataset`,
with switchable faults (see :mod:`tests.fakes.server`).

    with FakeUpstreams(synthetic(100)) as fakes:
        env = fakes.env(org_slug="acme")       # ZENEFITS_*, GOOGLE_* settings for the worker
        fakes.zenefits.faults.add("status", match="/people", times=2)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tests.fakes.classroom import FakeClassroom, make_service_account
from tests.fakes.dataset import Dataset
from tests.fakes.zenefits import FakeZenefits

__all__ = ["FakeClassroom", "FakeUpstreams", "FakeZenefits", "make_service_account"]

ZENEFITS_TOKEN = "fake-zenefits-token"
SUBJECT = "classroom-admin@demo.annarbor-medical.test"


class FakeUpstreams:
    """Both fakes, on free ports (or the given ones), and the settings that point at them."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        zenefits_port: int = 0,
        classroom_port: int = 0,
        latency: float = 0.0,
        max_page_size: int = 1000,
        key_dir: Path | None = None,
    ) -> None:
        self.dataset = dataset
        self.zenefits = FakeZenefits(
            dataset, token=ZENEFITS_TOKEN, port=zenefits_port, latency=latency
        )
        self.classroom = FakeClassroom(
            dataset, port=classroom_port, latency=latency, max_page_size=max_page_size
        )
        info, public_key = make_service_account(f"{self.classroom.url}/token")
        self.classroom.public_key = public_key
        self.service_account = info
        self._key_dir = key_dir
        self._own_dir: Path | None = None  # a temporary folder start() made, removed by stop()
        self.key_file: Path | None = None

    def start(self) -> FakeUpstreams:
        self.classroom.warm()
        self.zenefits.start()
        self.classroom.start()
        if self._key_dir is None:
            self._own_dir = Path(tempfile.mkdtemp(prefix="fake-upstreams-"))
        directory = self._key_dir or self._own_dir
        assert directory is not None
        directory.mkdir(parents=True, exist_ok=True)
        self.key_file = directory / "service-account.json"
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self.service_account, out)
        return self

    def stop(self) -> None:
        self.zenefits.stop()
        self.classroom.stop()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __enter__(self) -> FakeUpstreams:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def env(self, org_slug: str | None = None, **extra: Any) -> dict[str, str]:
        """The environment variables that point a worker at these fakes."""
        env = {
            "ZENEFITS_API_URL": self.zenefits.url,
            "ZENEFITS_API_KEY": ZENEFITS_TOKEN,
            "ZENEFITS_COMPANY_ID": self.dataset.company_id,
            "GOOGLE_SERVICE_ACCOUNT_KEY": str(self.key_file),
            "GOOGLE_CLASSROOM_API_URL": self.classroom.url,
            "GOOGLE_CLASSROOM_SUBJECT": SUBJECT,
        }
        if org_slug:
            env["COMPLIANCE_ORG_SLUG"] = org_slug
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def settings_overrides(self, org_slug: str | None = None) -> dict[str, Any]:
        """The same, as keyword arguments of :class:`sync.settings.SyncSettings`."""
        return {k.lower(): v for k, v in self.env(org_slug).items()}
