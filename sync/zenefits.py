"""Zenefits Core REST API client (httpx): the roster, page by page, as the API sent it.

GET ``/core/companies/{id}/people`` (and departments, locations) and ``/core/employments`` with
``limit=100`` and a Bearer token; follow ``data.next_url`` until it is null. Each page comes back
as its raw body (staged as is) plus the parsed records. The hire date lives on employments,
departments/locations/managers are reference objects: the SQL merge resolves them.

Errors, by HTTP status only (the error body's shape is not documented): 401/403 are auth or scope
problems and 404 a page that is gone (not retried); 429 and 5xx, timeouts, broken connections,
truncated or malformed JSON are retried per :class:`sync.retry.Retry`.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from sync.retry import FetchError, Page, PermanentError, Retry, TransientError, parse_retry_after

__all__ = ["RESOURCES", "Page", "ZenefitsClient"]

log = logging.getLogger(__name__)

#: Resource name -> (staging kind, path template). People last: a roster page may refer to any.
RESOURCES: dict[str, tuple[str, str]] = {
    "departments": ("zenefits_department", "/core/companies/{company}/departments"),
    "locations": ("zenefits_location", "/core/companies/{company}/locations"),
    "employments": ("zenefits_employment", "/core/employments"),
    "people": ("zenefits_person", "/core/companies/{company}/people"),
}
PAGE_LIMIT = 100
MAX_PAGES = 100_000


class ZenefitsClient:
    """Reads one company's roster. Use as a context manager (closes the HTTP client)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        company_id: str,
        *,
        retry: Retry,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.company_id = company_id
        self.retry = retry
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            follow_redirects=False,
        )

    def __enter__(self) -> ZenefitsClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- paging -----------------------------------------------------------------------------

    def first_url(self, resource: str) -> str:
        _kind, template = RESOURCES[resource]
        return f"{self.base_url}{template.format(company=self.company_id)}?limit={PAGE_LIMIT}"

    def rebase(self, next_url: str) -> str:
        """``next_url`` with the configured scheme and host (its path and query kept), so that a
        proxy or a fake on another address works as well as the real host."""
        parts = urlsplit(next_url)
        base = urlsplit(self.base_url)
        prefix = base.path.rstrip("/")
        path = parts.path if parts.path.startswith(prefix + "/") else prefix + parts.path
        return urlunsplit((base.scheme, base.netloc, path, parts.query, ""))

    def pages(self, resource: str) -> Iterator[Page]:
        """Every page of a list, following next_url; raises FetchError when one cannot be had."""
        url: str | None = self.first_url(resource)
        seen: set[str] = set()
        number = 0
        while url is not None:
            if url in seen or number >= MAX_PAGES:
                raise FetchError(f"Zenefits {resource}: next_url loops back to {url}")
            seen.add(url)
            number += 1
            body, doc = self.retry.call(
                functools.partial(self._get, url), f"Zenefits {resource} page {number}"
            )
            data = doc["data"]
            yield Page(body, data["data"])
            next_url = data.get("next_url")
            url = self.rebase(next_url) if isinstance(next_url, str) and next_url else None

    # -- one call ---------------------------------------------------------------------------

    def _get(self, url: str) -> tuple[bytes, dict[str, Any]]:
        path = urlsplit(url).path
        try:
            response = self._http.get(url)
        except httpx.TimeoutException as exc:
            raise TransientError(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransientError(f"connection failed ({type(exc).__name__}: {exc})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientError(
                f"HTTP {status} from {path}",
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status in (401, 403):
            raise PermanentError(
                f"HTTP {status} from {path}: the API key was refused "
                "(check ZENEFITS_API_KEY and its scopes)",
                status,
            )
        if status == 404:
            raise PermanentError(f"HTTP 404 from {path}: the page is gone", status)
        if status != 200:
            raise PermanentError(f"HTTP {status} from {path}", status)
        body = response.content
        try:
            doc = json.loads(body)
        except ValueError:
            raise TransientError(f"malformed JSON from {path} ({len(body)} bytes)") from None
        if (
            not isinstance(doc, dict)
            or not isinstance(doc.get("data"), dict)
            or not isinstance(doc["data"].get("data"), list)
        ):
            raise TransientError(f"unexpected JSON from {path}: no data.data list")
        return body, doc
