"""The PDFs of the training record and the course roster, laid out by :mod:`web.pdf_layout`.

Input: the JSON of ``api.training_record`` / ``api.course_roster`` (every time in it already the
organisation's local time, its zone named once). Paper: the organisation's ``paper_size``
(``letter`` where the record does not say). Plain, blocking code: the web app runs it in a
worker thread.

Table cells are plain strings cut to their column (a paragraph per cell would cost ten times as
much on a roster of thousands); notes that need wrapping are paragraphs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Flowable,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from web.pdf_layout import PAPER_SIZES, build_pdf, data_table, esc, frame_width, section, styles

__all__ = ["render_roster", "render_training_record"]


def _paper(record: dict[str, Any]) -> str:
    paper = str((record.get("organization") or {}).get("paper_size") or "letter").lower()
    return paper if paper in PAPER_SIZES else "letter"


def _cut(value: Any, limit: int) -> str:
    """A plain cell: empty for none, cut with an ellipsis at ``limit`` characters."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _time(value: Any) -> str:
    """A local date-time as a person reads it: 2025-02-03 12:00."""
    return "" if not value else str(value).replace("T", " ")[:16]


def _score(value: Any) -> str:
    return "" if value is None else f"{Decimal(str(value)):.2f}"


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _person(value: Any) -> str:
    if not value:
        return ""
    return f"{value.get('name')} ({value.get('role')})" if value.get("role") else value["name"]


def _widths(*fractions: float) -> list[float]:
    width = frame_width()
    return [width * f for f in fractions]


def _facts(pairs: list[tuple[str, Any]]) -> Flowable:
    """A two-column table of labels and values (values wrap)."""
    st = styles()
    rows = [
        [Paragraph(f"<b>{esc(label)}</b>", st["cell"]), Paragraph(esc(value), st["cell"])]
        for label, value in pairs
    ]
    return _plain_table(rows, _widths(0.2, 0.8))


def _plain_table(rows: list[list[Any]], widths: list[float]) -> Flowable:
    table = Table(rows, colWidths=widths)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table


def _stamp(record: dict[str, Any]) -> str:
    by = _person(record.get("generated_by")) or "unknown"
    return f"{_time(record.get('generated_at'))} ({record.get('time_zone')}) by {by}"


def _verification(record: dict[str, Any]) -> list[Flowable]:
    v = record.get("verification") or {}
    st = styles()
    text = (
        f"Audit trail checkpoint when this was generated: entry {esc(v.get('chain_seq'))}, "
        f"hash {esc(v.get('chain_hash'))}"
        + (f", written {esc(_time(v.get('written_at')))}" if v.get("written_at") else "")
        + ". To verify that the audit trail up to it is intact, an administrator runs: "
        f"<font face='Courier'>{esc(v.get('verify'))}</font> (no rows: intact). "
        "This export itself is recorded in the audit trail (compliance_export)."
    )
    return [Spacer(1, 2 * mm), Paragraph(text, st["small"])]


# -- training record ---------------------------------------------------------------------------


def _cycle_note(c: dict[str, Any]) -> str:
    notes: list[str] = []
    if not c.get("required"):
        notes.append(f"not required ({c.get('not_required_reason') or 'optional'})")
    exemption = c.get("exemption")
    if exemption and c.get("status") == "exempted":
        by = (exemption.get("by") or {}).get("name")
        notes.append(f"exempt: {exemption.get('reason')}" + (f" ({by})" if by else ""))
    if c.get("valid_until"):
        notes.append(f"valid until {c['valid_until']}")
    if c.get("corrections"):
        notes.append(f"{len(c['corrections'])} correction(s)")
    return "; ".join(notes)


def render_training_record(record: dict[str, Any]) -> bytes:
    """The PDF of one employee's training record."""
    st = styles()
    employee = record["employee"]
    organization = record["organization"]
    cycles = record.get("cycles") or []
    story: list[Flowable] = [
        Paragraph(f"Training record: {esc(employee['name'])}", st["title"]),
        _facts(
            [
                ("Employee", f"{employee['name']} <{employee['email']}>"),
                ("Job title", employee.get("job_title")),
                ("Department", employee.get("department")),
                ("Location", employee.get("location")),
                ("Hire date", employee.get("hire_date")),
                ("Status", employee.get("status")),
                ("Tier", employee.get("tier") or "(none)"),
                ("Organisation", organization.get("name")),
                ("Generated", _stamp(record)),
                ("Times", f"local time, {record.get('time_zone')}"),
            ]
        ),
        *_verification(record),
    ]
    completed = sum(1 for c in cycles if c.get("status") == "completed")
    late = sum(1 for c in cycles if c.get("status") == "completed" and c.get("late"))
    story.append(
        Paragraph(
            f"{len(cycles)} assignment cycles: {completed} completed ({late} late), "
            f"{sum(1 for c in cycles if c.get('status') == 'overdue')} overdue, "
            f"{sum(1 for c in cycles if c.get('status') == 'exempted')} exempted, "
            f"{sum(1 for c in cycles if not c.get('required'))} not required.",
            st["body"],
        )
    )
    rows: list[list[Any]] = [
        ["Module", "Month", "Assigned", "Due", "Completed", "Status", "Score", "Att.", "Late"]
    ]
    widths = _widths(0.25, 0.08, 0.09, 0.09, 0.13, 0.1, 0.07, 0.05, 0.14)
    for c in cycles:
        note = _cycle_note(c)
        late_text = f"{c['days_late']} d" if c.get("days_late") is not None else ""
        if c.get("late") and not late_text:
            late_text = "late"
        rows.append(
            [
                _cut(c["module"], 45) + (f"\n{_cut(note, 60)}" if note else ""),
                _cut(c.get("month_key"), 8),
                str(c.get("assigned_at") or "")[:10],
                _cut(c.get("due_date"), 10),
                _time(c.get("completed_at")),
                _cut(c.get("status"), 12),
                _score(c.get("score")),
                _cut(c.get("attempts"), 4),
                late_text,
            ]
        )
    story += section(
        "Assignment cycles", data_table(rows, widths, numeric_from=6), empty="No assignments."
    )

    corrections: list[list[Any]] = [["Module", "Due", "Corrected", "By", "Before", "After"]]
    reasons: list[str] = []
    for c in cycles:
        for k in c.get("corrections") or []:
            before, after = k.get("before") or {}, k.get("after") or {}
            corrections.append(
                [
                    _cut(c["module"], 30),
                    _cut(c.get("due_date"), 10),
                    _time(k.get("at")),
                    _cut((k.get("by") or {}).get("name"), 24),
                    f"{_time(before.get('completed_at'))} {_score(before.get('score'))}".strip(),
                    (
                        f"{_time(after.get('completed_at'))} {_score(after.get('score'))}".strip()
                        if after.get("attended")
                        else "not attended"
                    )
                    + f"\n{_cut(k.get('reason'), 50)}",
                ]
            )
            reasons.append(str(k.get("reason")))
    story += section(
        "Corrections",
        data_table(corrections, _widths(0.22, 0.1, 0.15, 0.15, 0.17, 0.21)),
        empty="No completion was recorded late or corrected.",
    )

    reviews: list[list[Any]] = [
        ["Requirement", "Tier", "Status", "Decision", "By", "At", "Comments"]
    ]
    for r in record.get("requirements") or []:
        entries = r.get("reviews") or [None]
        for review in entries:
            reviews.append(
                [
                    _cut(r.get("requirement"), 30),
                    _cut(r.get("tier"), 14),
                    _cut(r.get("status"), 18),
                    _cut((review or {}).get("decision"), 18),
                    _cut(((review or {}).get("by") or {}).get("name"), 20),
                    _time((review or {}).get("at")),
                    _cut((review or {}).get("comments"), 40),
                ]
            )
    story += section(
        "Requirements and reviews",
        data_table(reviews, _widths(0.2, 0.1, 0.12, 0.12, 0.13, 0.13, 0.2)),
        empty="No requirements.",
    )

    tiers: list[list[Any]] = [["Changed", "From", "To", "Kind", "By", "Reason"]]
    for t in record.get("tier_history") or []:
        tiers.append(
            [
                _time(t.get("at")),
                _cut(t.get("from"), 20),
                _cut(t.get("to"), 20),
                _cut(t.get("kind"), 12),
                _cut((t.get("by") or {}).get("name"), 22),
                _cut(t.get("reason"), 40),
            ]
        )
    story += section(
        "Tier history",
        data_table(tiers, _widths(0.15, 0.15, 0.15, 0.12, 0.17, 0.26)),
        empty="No tier changes.",
    )
    return build_pdf(
        story,
        paper=_paper(record),
        title=f"Training record: {employee['name']}",
        generated=_stamp(record),
        author=str(organization.get("name") or ""),
        subject="Training record (transcript)",
    )


# -- course roster -----------------------------------------------------------------------------


def render_roster(roster: dict[str, Any]) -> bytes:
    """The PDF of one module's course roster."""
    st = styles()
    module = roster["module"]
    organization = roster["organization"]
    sessions = roster.get("sessions") or []
    scope = (
        "direct reports of the requesting manager"
        if roster.get("scope") == "direct_reports"
        else "the whole organisation"
    )
    story: list[Flowable] = [
        Paragraph(f"Course roster: {esc(module['name'])}", st["title"]),
        _facts(
            [
                ("Module", module["name"]),
                ("Month", module.get("month_key")),
                ("Content summary", module.get("content_summary") or "(not recorded)"),
                ("Trainer", module.get("trainer") or "(not recorded)"),
                ("Qualifications", module.get("trainer_qualifications") or "(not recorded)"),
                ("Passing score", _score(module.get("passing_score"))),
                (
                    "Valid for",
                    f"{module['validity_days']} days"
                    if module.get("validity_days")
                    else "no expiry",
                ),
                ("Organisation", organization.get("name")),
                ("Covers", scope),
                ("Generated", _stamp(roster)),
                ("Times", f"local time, {roster.get('time_zone')}"),
            ]
        ),
        *_verification(roster),
    ]
    if not sessions:
        story += section("Sessions", None, empty="Nobody has been assigned this module.")
    widths = _widths(0.26, 0.2, 0.2, 0.16, 0.09, 0.09)
    for s in sessions:
        dates = (
            f"completed {s['first_completed_on']} to {s['last_completed_on']}"
            if s.get("first_completed_on")
            else "no completions"
        )
        rows: list[list[Any]] = [
            ["Attendee", "Job title", "Department", "Completed", "Score", "Late"]
        ]
        for a in s["completed"]:
            rows.append(
                [
                    _cut(a.get("name"), 40),
                    _cut(a.get("job_title"), 30),
                    _cut(a.get("department"), 30),
                    _time(a.get("completed_at")),
                    _score(a.get("score")),
                    _yes(a.get("late")),
                ]
            )
        story += section(
            f"Session {s['cycle']}: {s['completed_count']} attended, "
            f"{s['not_completed_count']} did not ({dates})",
            data_table(rows, widths, numeric_from=4),
            empty="Nobody has completed this session.",
        )
        if s["not_completed"]:
            absent: list[list[Any]] = [
                ["Assigned, not completed", "Job title", "Department", "Due", "Status", ""]
            ]
            for a in s["not_completed"]:
                absent.append(
                    [
                        _cut(a.get("name"), 40),
                        _cut(a.get("job_title"), 30),
                        _cut(a.get("department"), 30),
                        _cut(a.get("due_date"), 10),
                        _cut(a.get("status"), 12),
                        "",
                    ]
                )
            story += section(
                f"Session {s['cycle']}: assigned, not completed",
                data_table(absent, widths),
            )
    return build_pdf(
        story,
        paper=_paper(roster),
        title=f"Course roster: {module['name']}",
        generated=_stamp(roster),
        author=str(organization.get("name") or ""),
        subject="Course roster (training session record)",
    )
