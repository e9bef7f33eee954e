"""A fake of the TriNet Zenefits Core REST API (EXTERNAL_APIS.md §3, checklist §5.2).

- ``Authorization: Bearer <token>`` on every request, else 401;
- the ``/meta/response`` + ``/meta/list`` envelope; records at ``data.data``;
- ``limit`` (default 20, at most 100) and ``starting_after=<id>``; ``next_url`` absolute, on the
  fake's own host, null on the last page;
- reference objects (``/meta/ref/detail``, ``/meta/ref/list``) with ``url: null`` when unset;
- people (company-scoped and top-level), one person, a person's employments and subordinates,
  employments, departments, locations, companies, ``/core/me``.

Control (besides faults): ``POST /_fake/people/<id>`` (fields to change, e.g. {"title": "x",
"status": "terminated"}), ``DELETE /_fake/people/<id>`` (gone from the roster),
``POST /_fake/people`` (a new person: zid, first_name, last_name, work_email, ...).
"""

from __future__ import annotations

import bisect
import functools
import json
import threading
from collections.abc import Callable
from typing import Any

from tests.fakes.dataset import Dataset, Employment, Person
from tests.fakes.server import FakeServer, Reply, Request

__all__ = ["FakeZenefits"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class FakeZenefits(FakeServer):
    name = "zenefits"

    def __init__(
        self,
        dataset: Dataset,
        token: str = "fake-zenefits-token",  # noqa: S107 - the fake's own token
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.token = token
        self._data_lock = threading.Lock()

    # -- wire format ------------------------------------------------------------------------

    def ref(self, kind: str, ident: str | None, listing: bool = False) -> dict[str, Any]:
        return {
            "object": "/meta/ref/list" if listing else "/meta/ref/detail",
            "ref_object": f"/core/{kind}",
            "url": None if ident is None else f"{self.url}/core/{kind}/{ident}",
        }

    def person_json(self, p: Person) -> dict[str, Any]:
        return {
            "id": p.zid,
            "object": "/core/people",
            "url": f"{self.url}/core/people/{p.zid}",
            "first_name": p.first_name,
            "middle_name": None,
            "last_name": p.last_name,
            "preferred_name": p.preferred_name or p.first_name,
            "title": p.title,
            "status": p.status,
            "type": "regular",
            "is_admin": False,
            "work_email": p.work_email,
            "personal_email": p.personal_email,
            "work_phone": None,
            "personal_phone": None,
            "employee_number": "".join(ch for ch in p.zid if ch.isdigit())[-5:] or None,
            "date_of_birth": p.date_of_birth,
            "gender": "",
            "company": self.ref("companies", self.dataset.company_id),
            "department": self.ref("departments", p.dept_zid),
            "location": self.ref("locations", p.loc_zid),
            "manager": self.ref("people", p.manager_zid),
            "employments": {
                "object": "/meta/ref/list",
                "ref_object": "/core/employments",
                "url": f"{self.url}/core/people/{p.zid}/employments",
            },
            "subordinates": {
                "object": "/meta/ref/list",
                "ref_object": "/core/people",
                "url": f"{self.url}/core/people/{p.zid}/subordinates",
            },
        }

    def employment_json(self, p: Person, e: Employment) -> dict[str, Any]:
        return {
            "id": e.eid,
            "object": "/core/employments",
            "url": f"{self.url}/core/employments/{e.eid}",
            "person": self.ref("people", p.zid),
            "hire_date": e.hire_date,
            "termination_date": e.termination_date,
            "termination_type": "voluntary" if e.termination_date else None,
            "employment_type": "full_time",
            "employment_sub_type": None,
            "is_active": e.is_active,
            "comp_type": "salary",
            "annual_salary": "52000.00",
            "pay_rate": None,
            "working_hours_per_week": "40",
        }

    def department_json(self, zid: str, name: str) -> dict[str, Any]:
        return {
            "id": zid,
            "object": "/core/departments",
            "url": f"{self.url}/core/departments/{zid}",
            "name": name,
            "company": self.ref("companies", self.dataset.company_id),
            "people": self.ref("people", None, listing=True),
        }

    def location_json(self, loc: Any) -> dict[str, Any]:
        return {
            "id": loc.zid,
            "object": "/core/locations",
            "url": f"{self.url}/core/locations/{loc.zid}",
            "name": loc.name,
            "street1": loc.street1,
            "street2": None,
            "city": loc.city,
            "state": loc.state,
            "zip": loc.zip,
            "country": "US",
            "phone": None,
            "company": self.ref("companies", self.dataset.company_id),
        }

    def envelope(self, data: Any, status: int = 200) -> dict[str, Any]:
        return {"status": status, "object": "/meta/response", "error": None, "data": data}

    def error_body(self, status: int, message: str) -> Any:
        return {"status": status, "object": "/meta/response", "data": None, "error": message}

    def listing(
        self,
        request: Request,
        items: list[Any],
        key: Callable[[Any], str],
        render: Callable[[Any], Any],
    ) -> Reply:
        """One page of ``items`` (rendered only for that page), ordered by numeric id."""
        try:
            limit = int(request.one("limit") or DEFAULT_LIMIT)
        except ValueError:
            return Reply(400, self.error_body(400, "limit must be a number"))
        limit = max(1, min(limit, MAX_LIMIT))
        # (each item's order key computed once: a roster of 10,000 is sorted on every page, and
        # the fake must not be what a benchmark measures)
        keyed = sorted(((_order(key(item)), item) for item in items), key=lambda pair: pair[0])
        start = 0
        after = request.one("starting_after")
        if after:
            start = bisect.bisect_right([k for k, _item in keyed], _order(after))
        page = [item for _k, item in keyed[start : start + limit]]
        more = len(keyed) > start + limit
        next_url = (
            f"{self.url}{request.path}?limit={limit}&starting_after={key(page[-1])}"
            if more and page
            else None
        )
        return Reply(
            200,
            self.envelope(
                {
                    "object": "/meta/list",
                    "url": request.path,
                    "next_url": next_url,
                    "data": [render(item) for item in page],
                }
            ),
        )

    # -- routes -----------------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, self.error_body(401, "Invalid or expired token"))
        if request.method != "GET":
            return Reply(405, self.error_body(405, "method not allowed"))
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] != ["core"]:
            return Reply(404, self.error_body(404, "not found"))
        parts = parts[1:]
        ds = self.dataset
        if parts[:1] == ["companies"] and len(parts) >= 2:
            if parts[1] != ds.company_id:
                return Reply(404, self.error_body(404, f"company {parts[1]} not found"))
            if len(parts) == 2:
                return Reply(
                    200,
                    self.envelope(
                        {"id": ds.company_id, "object": "/core/companies", "name": ds.company_name}
                    ),
                )
            parts = parts[2:]
        with self._data_lock:
            people = list(ds.people)
        if parts == ["me"]:
            return Reply(
                200,
                self.envelope(
                    {
                        "object": "/core/me",
                        "scopes": ["people"],
                        "company": self.ref("companies", ds.company_id),
                    }
                ),
            )
        if parts == ["people"]:
            return self.listing(request, people, _zid, self.person_json)
        if parts[:1] == ["people"] and len(parts) >= 2:
            person = next((p for p in people if p.zid == parts[1]), None)
            if person is None:
                return Reply(404, self.error_body(404, f"person {parts[1]} not found"))
            if len(parts) == 2:
                return Reply(200, self.envelope(self.person_json(person)))
            if parts[2] == "employments":
                return self.listing(
                    request,
                    [(person, e) for e in person.employments],
                    _eid,
                    lambda pe: self.employment_json(*pe),
                )
            if parts[2] == "subordinates":
                return self.listing(
                    request,
                    [p for p in people if p.manager_zid == person.zid],
                    _zid,
                    self.person_json,
                )
        if parts == ["employments"]:
            return self.listing(
                request,
                [(p, e) for p in people for e in p.employments],
                _eid,
                lambda pe: self.employment_json(*pe),
            )
        if parts == ["departments"]:
            return self.listing(
                request, ds.departments, _zid, lambda d: self.department_json(d.zid, d.name)
            )
        if parts == ["locations"]:
            return self.listing(request, ds.locations, _zid, self.location_json)
        if parts[:1] in (["departments"], ["locations"]) and len(parts) == 2:
            for d in ds.departments:
                if parts == ["departments", d.zid]:
                    return Reply(200, self.envelope(self.department_json(d.zid, d.name)))
            for x in ds.locations:
                if parts == ["locations", x.zid]:
                    return Reply(200, self.envelope(self.location_json(x)))
        return Reply(404, self.error_body(404, f"{request.path} not found"))

    # -- control ----------------------------------------------------------------------------

    def control(self, request: Request) -> Reply | None:
        parts = [p for p in request.path.split("/") if p][1:]
        if parts[:1] != ["people"]:
            return None
        with self._data_lock:
            if len(parts) == 1 and request.method == "POST":
                spec = json.loads(request.body or b"{}")
                hire = spec.pop("hire_date", "2025-01-01")
                added = Person(**spec)
                added.employments = [Employment(str(3400000 + len(self.dataset.people)), hire)]
                self.dataset.people.append(added)
                return Reply(201, self.person_json(added))
            person = next(
                (p for p in self.dataset.people if len(parts) == 2 and p.zid == parts[1]), None
            )
            if person is None:
                return Reply(404, {"error": "no such person"})
            if request.method == "DELETE":
                self.dataset.people.remove(person)
                return Reply(200, {"deleted": person.zid})
            for key, value in json.loads(request.body or b"{}").items():
                if key == "hire_date":
                    person.employments[-1].hire_date = value
                elif hasattr(person, key):
                    setattr(person, key, value)
                else:
                    return Reply(400, {"error": f"unknown field {key}"})
            return Reply(200, self.person_json(person))


def _zid(item: Any) -> str:
    return str(item.zid)


def _eid(pair: tuple[Person, Employment]) -> str:
    return pair[1].eid


@functools.lru_cache(maxsize=65536)
def _order(ident: str) -> tuple[int, int, str]:
    """Ids in API order: numeric ids by value (the real ones are digits), others after them."""
    return (0, int(ident), "") if ident.isdigit() else (1, 0, ident)
