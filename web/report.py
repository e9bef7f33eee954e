"""The PDF compliance report, drawn with reportlab from ``api.compliance_report``'s JSON.

Laid out by :mod:`web.pdf_layout` on the organisation's paper (``organizations.paper_size``):
"page N of M" in the footer, each heading kept with the first rows of its table, the trend drawn
for the scope the caller reads (the organisation's, or their own for an employee), and no empty
box: a section with nothing to show says so in one line, or is left out when the caller may not
read it. :func:`render_report` is plain, blocking code: the web app runs it in a worker thread.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.graphics.charts.lineplots import LinePlot  # type: ignore[import-untyped]
from reportlab.graphics.shapes import Drawing, Line, String  # type: ignore[import-untyped]
from reportlab.graphics.widgets.markers import makeMarker  # type: ignore[import-untyped]
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import Flowable, Paragraph, Table, TableStyle  # type: ignore[import-untyped]

from web.pdf_layout import (
    GREEN,
    GREY,
    HEADER_BG,
    RED,
    build_pdf,
    data_table,
    esc,
    frame_width,
    section,
    styles,
)

__all__ = ["render_report"]

TITLE = "Compliance report"

#: How the trend section names what it shows (``trend_scope`` of the report).
TREND_SCOPES = {
    "organization": "organisation",
    "department": "department",
    "location": "location",
    "department_location": "department and location",
    "employee": "your assignments",
}


def _pct(value: Any) -> str:
    return f"{float(value):.2f} %" if value is not None else "-"


def _generated_at(report: dict[str, Any]) -> str:
    raw = str(report.get("generated_at") or "")
    tz = str((report.get("organization") or {}).get("timezone") or "UTC")
    try:
        moment = datetime.fromisoformat(raw)
        local = moment.astimezone(ZoneInfo(tz))
        return f"{local:%Y-%m-%d %H:%M} ({tz})"
    except (ValueError, KeyError):
        return raw


def _against_target(groups: list[dict[str, Any]], label: str) -> Table:
    cell = styles()["cell"]
    rows: list[list[Any]] = [
        [
            label,
            "Employees",
            "Required",
            "Completed",
            "Overdue",
            "Exempted",
            "Rate",
            "Target",
            "Met",
        ]
    ]
    marks: list[tuple[Any, ...]] = []
    for i, group in enumerate(groups, start=1):
        met = bool(group.get("target_met"))
        rows.append(
            [
                Paragraph(esc(group.get("name")), cell),
                group.get("employees", 0),
                group.get("required", 0),
                group.get("completed", 0),
                group.get("overdue", 0),
                group.get("exempted", 0),
                _pct(group.get("rate")),
                _pct(group.get("target")),
                "yes" if met else "no",
            ]
        )
        marks.append(("TEXTCOLOR", (6, i), (6, i), GREEN if met else RED))
        marks.append(("TEXTCOLOR", (8, i), (8, i), GREEN if met else RED))
    table = data_table(
        rows,
        [52 * mm, 17 * mm, 16 * mm, 18 * mm, 15 * mm, 16 * mm, 17 * mm, 16 * mm, 10 * mm],
        numeric_from=1,
    )
    if marks:
        table.setStyle(TableStyle(marks))
    return table


def _trend_points(trend: list[dict[str, Any]]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for item in trend:
        try:
            day = date.fromisoformat(str(item["date"]))
            points.append((float(day.toordinal()), float(item["rate"])))
        except (KeyError, TypeError, ValueError):
            continue
    return points


def _trend_chart(points: list[tuple[float, float]], target: float, monthly: bool) -> Drawing:
    """The rate per day (0-100 %), with the target as a dashed line."""
    width, height = min(170 * mm, frame_width()), 60 * mm
    drawing = Drawing(width, height)
    if len(points) == 1:  # one day: a short level line, so that it shows
        points = [(points[0][0] - 1, points[0][1]), points[0]]
    plot = LinePlot()
    plot.x, plot.y = 14 * mm, 10 * mm
    plot.width, plot.height = width - 20 * mm, height - 16 * mm
    plot.data = [points]
    plot.lines[0].strokeColor = colors.HexColor("#1a73e8")
    plot.lines[0].strokeWidth = 1.5
    if len(points) <= 60:
        plot.lines[0].symbol = makeMarker("FilledCircle", size=2.5)
    plot.yValueAxis.valueMin = 0
    plot.yValueAxis.valueMax = 100
    plot.yValueAxis.valueStep = 20
    plot.yValueAxis.labelTextFormat = "%d %%"
    plot.yValueAxis.labels.fontSize = 7
    first, last = points[0][0], points[-1][0]
    plot.xValueAxis.valueMin = first
    plot.xValueAxis.valueMax = last
    step = max(1.0, round((last - first) / 5))
    plot.xValueAxis.valueSteps = [first + step * i for i in range(int((last - first) // step) + 1)]
    label = "%b %Y" if monthly else "%Y-%m-%d"
    plot.xValueAxis.labelTextFormat = lambda v: date.fromordinal(int(v)).strftime(label)
    plot.xValueAxis.labels.fontSize = 7
    drawing.add(plot)
    y = plot.y + plot.height * max(0.0, min(100.0, target)) / 100.0
    drawing.add(
        Line(
            plot.x,
            y,
            plot.x + plot.width,
            y,
            strokeColor=RED,
            strokeDashArray=[3, 2],
            strokeWidth=0.8,
        )
    )
    drawing.add(
        String(
            plot.x + plot.width,
            y + 2,
            f"target {target:.0f} %",
            fontSize=7,
            fillColor=RED,
            textAnchor="end",
        )
    )
    return drawing


def _trend_section(report: dict[str, Any], target: float) -> list[Flowable]:
    """The trend of the scope the caller reads; nothing when they read none (``trend_scope``
    null); one line instead of a chart when there is no figure yet."""
    if "trend_scope" in report and not report.get("trend_scope"):
        return []
    scope = str(report.get("trend_scope") or "organization")
    monthly = report.get("trend_granularity") == "month"
    heading = (
        f"Compliance trend ({TREND_SCOPES.get(scope, scope.replace('_', ' '))}, "
        f"{'monthly' if monthly else 'daily'})"
    )
    points = _trend_points(report.get("trend") or [])
    if not points:
        return section(
            heading,
            None,
            empty="No figures yet: the trend appears once there are required assignments to count.",
        )
    return section(heading, _trend_chart(points, target, monthly))


def _summary(summary: dict[str, Any]) -> list[Flowable]:
    rate = summary.get("rate")
    target = float(summary.get("target") or 95)
    met = bool(summary.get("target_met"))
    figures = [
        ["Compliance rate", _pct(rate), "Target", _pct(target)],
        [
            "Employees",
            summary.get("employees", 0),
            "Assignments in scope",
            summary.get("assignments", 0),
        ],
        [
            "Required (counted)",
            summary.get("required", 0),
            "Completed",
            summary.get("completed", 0),
        ],
        [
            "In progress",
            summary.get("in_progress", 0),
            "Not started",
            summary.get("not_started", 0),
        ],
        ["Overdue", summary.get("overdue", 0), "Exempted", summary.get("exempted", 0)],
    ]
    table = Table(figures, colWidths=[45 * mm, 40 * mm, 45 * mm, 40 * mm])
    table.setStyle(
        TableStyle(
            [
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"),
                ("FONTNAME", (2, 0), (2, -1), "Helvetica-Bold"),
                ("TEXTCOLOR", (1, 0), (1, 0), GREEN if met else RED),
                ("FONTSIZE", (1, 0), (1, 0), 12),
                ("BOX", (0, 0), (-1, -1), 0.5, GREY),
                ("INNERGRID", (0, 0), (-1, -1), 0.25, HEADER_BG),
            ]
        )
    )
    note = Paragraph(
        "Counted: required assignments of active employees. Rate = completed / (counted - "
        "exempted) x 100; 100 % when nothing is left to complete.",
        styles()["small"],
    )
    return section("Summary", [table, note])


def _overdue(report: dict[str, Any]) -> list[Flowable]:
    cell = styles()["cell"]
    overdue = report.get("overdue") or []
    total = int(report.get("overdue_total") or 0)
    heading = f"Overdue assignments ({total})"
    if not overdue:
        return section(heading, None, empty="None.")
    rows: list[list[Any]] = [
        ["Employee", "Department", "Location", "Module", "Due", "Days overdue"]
    ]
    for item in overdue:
        rows.append(
            [
                Paragraph(esc(item.get("employee_name")), cell),
                Paragraph(esc(item.get("department")), cell),
                Paragraph(esc(item.get("location")), cell),
                Paragraph(esc(item.get("module")), cell),
                esc(item.get("due_date")),
                item.get("days_overdue"),
            ]
        )
    body: list[Flowable] = [
        data_table(rows, [40 * mm, 30 * mm, 25 * mm, 45 * mm, 20 * mm, 20 * mm], numeric_from=5)
    ]
    if total > len(overdue):
        body.append(
            Paragraph(
                f"… and {total - len(overdue)} more: export compliance.csv with status=overdue "
                "for the full list.",
                styles()["small"],
            )
        )
    return section(heading, body)


def render_report(
    report: dict[str, Any], labels: dict[str, Any], *, paper: str = "letter"
) -> bytes:
    """The PDF bytes of the report on ``paper`` ('letter' or 'a4': the organisation's
    ``paper_size``); ``labels``: the filters as the caller wrote them."""
    style = styles()
    org = report.get("organization") or {}
    summary = report.get("summary") or {}
    generated = _generated_at(report)
    shown = [f"{k}: {esc(v)}" for k, v in labels.items() if v]
    story: list[Flowable] = [
        Paragraph(TITLE, style["title"]),
        Paragraph(f"<b>Organisation:</b> {esc(org.get('name'))}", style["body"]),
        Paragraph(
            "<b>Filters:</b> "
            + ("; ".join(shown) if shown else "none (all assignments you may read)"),
            style["body"],
        ),
        Paragraph(f"<b>Generated at:</b> {esc(generated)}", style["body"]),
    ]
    story += _summary(summary)
    for key, heading, label in (
        ("departments", "Compliance by department", "Department"),
        ("locations", "Compliance by location", "Location"),
    ):
        groups = report.get(key) or []
        story += section(
            heading,
            _against_target(groups, label) if groups else None,
            empty="No assignments in scope.",
        )
    story += _trend_section(report, float(summary.get("target") or 95))
    story += _overdue(report)
    return build_pdf(
        story,
        paper=paper,
        title=TITLE,
        generated=generated,
        author=str(org.get("name") or "Compliance Training Manager"),
        subject="Training compliance",
    )
