"""The PDF compliance report, drawn with reportlab from ``api.compliance_report``'s JSON.

:func:`render_report` is plain, blocking code: the web app runs it in a worker thread.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.graphics.charts.lineplots import LinePlot  # type: ignore[import-untyped]
from reportlab.graphics.shapes import Drawing, Line, String  # type: ignore[import-untyped]
from reportlab.graphics.widgets.markers import makeMarker  # type: ignore[import-untyped]
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.enums import TA_RIGHT  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

__all__ = ["render_report"]

GREEN = colors.HexColor("#1b7f3b")
RED = colors.HexColor("#b3261e")
GREY = colors.HexColor("#5f6368")
HEADER_BG = colors.HexColor("#e8eaed")


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("title", parent=base["Title"], alignment=0, spaceAfter=2 * mm),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], spaceBefore=5 * mm, spaceAfter=2 * mm),
        "body": base["BodyText"],
        "small": ParagraphStyle("small", parent=base["BodyText"], fontSize=8, textColor=GREY),
        "cell": ParagraphStyle("cell", parent=base["BodyText"], fontSize=8, leading=10),
        "num": ParagraphStyle("num", parent=base["BodyText"], fontSize=8, alignment=TA_RIGHT),
    }


#: The longest text the report prints in one cell or line: a longer stored value (a name of
#: any length) is cut with an ellipsis, so that every row still fits on a page.
TEXT_LIMIT = 200


def _esc(value: Any) -> str:
    text = "" if value is None else str(value)
    if len(text) > TEXT_LIMIT:
        text = text[: TEXT_LIMIT - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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


def _table(rows: list[list[Any]], widths: list[float], numeric_from: int) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, GREY),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f8f9fa")]),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def _against_target(groups: list[dict[str, Any]], label: str) -> Table:
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
    styles: list[tuple[Any, ...]] = []
    for i, group in enumerate(groups, start=1):
        met = bool(group.get("target_met"))
        rows.append(
            [
                _esc(group.get("name")),
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
        styles.append(("TEXTCOLOR", (6, i), (6, i), GREEN if met else RED))
        styles.append(("TEXTCOLOR", (8, i), (8, i), GREEN if met else RED))
    table = _table(
        rows, [52 * mm, 17 * mm, 16 * mm, 18 * mm, 15 * mm, 16 * mm, 17 * mm, 16 * mm, 10 * mm], 1
    )
    if styles:
        table.setStyle(TableStyle(styles))
    return table


def _trend_chart(trend: list[dict[str, Any]], target: float) -> Drawing:
    width, height = 170 * mm, 60 * mm
    drawing = Drawing(width, height)
    points: list[tuple[float, float]] = []
    for item in trend:
        try:
            day = date.fromisoformat(str(item["date"]))
            points.append((float(day.toordinal()), float(item["rate"])))
        except (KeyError, TypeError, ValueError):
            continue
    if not points:
        drawing.add(
            String(
                width / 2,
                height / 2,
                "No daily snapshots yet: the trend appears after the first daily job.",
                textAnchor="middle",
                fontSize=9,
                fillColor=GREY,
            )
        )
        return drawing
    if len(points) == 1:
        points.append((points[0][0] + 1, points[0][1]))
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
    plot.xValueAxis.labelTextFormat = lambda v: date.fromordinal(int(v)).strftime("%Y-%m-%d")
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


def render_report(report: dict[str, Any], labels: dict[str, Any]) -> bytes:
    """The PDF bytes of the report (``labels``: the filters as the caller wrote them)."""
    styles = _styles()
    org = report.get("organization") or {}
    summary = report.get("summary") or {}
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title="Compliance report",
        author=str(org.get("name") or "Compliance Training Manager"),
        subject="Training compliance",
    )
    story: list[Any] = []
    story.append(Paragraph("Compliance report", styles["title"]))
    story.append(Paragraph(f"<b>Organisation:</b> {_esc(org.get('name'))}", styles["body"]))
    shown = [f"{k}: {_esc(v)}" for k, v in labels.items() if v]
    story.append(
        Paragraph(
            "<b>Filters:</b> "
            + ("; ".join(shown) if shown else "none (all assignments you may read)"),
            styles["body"],
        )
    )
    story.append(Paragraph(f"<b>Generated at:</b> {_esc(_generated_at(report))}", styles["body"]))

    rate = summary.get("rate")
    target = float(summary.get("target") or 95)
    met = bool(summary.get("target_met"))
    story.append(Paragraph("Summary", styles["h2"]))
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
    story.append(table)
    story.append(
        Paragraph(
            "Counted: required assignments of active employees. Rate = completed / (counted - "
            "exempted) x 100; 100 % when nothing is left to complete.",
            styles["small"],
        )
    )

    story.append(Paragraph("Compliance by department", styles["h2"]))
    departments = report.get("departments") or []
    story.append(
        _against_target(departments, "Department")
        if departments
        else Paragraph("No assignments in scope.", styles["body"])
    )
    story.append(Paragraph("Compliance by location", styles["h2"]))
    locations = report.get("locations") or []
    story.append(
        _against_target(locations, "Location")
        if locations
        else Paragraph("No assignments in scope.", styles["body"])
    )

    story.append(
        KeepTogether(
            [
                Paragraph("Compliance trend (organisation, daily)", styles["h2"]),
                _trend_chart(report.get("trend") or [], target),
            ]
        )
    )

    overdue = report.get("overdue") or []
    total = int(report.get("overdue_total") or 0)
    story.append(Paragraph(f"Overdue assignments ({total})", styles["h2"]))
    if overdue:
        rows: list[list[Any]] = [
            ["Employee", "Department", "Location", "Module", "Due", "Days overdue"]
        ]
        for item in overdue:
            rows.append(
                [
                    Paragraph(_esc(item.get("employee_name")), styles["cell"]),
                    Paragraph(_esc(item.get("department")), styles["cell"]),
                    Paragraph(_esc(item.get("location")), styles["cell"]),
                    Paragraph(_esc(item.get("module")), styles["cell"]),
                    _esc(item.get("due_date")),
                    item.get("days_overdue"),
                ]
            )
        story.append(_table(rows, [40 * mm, 30 * mm, 25 * mm, 45 * mm, 20 * mm, 20 * mm], 5))
        if total > len(overdue):
            story.append(
                Paragraph(
                    f"… and {total - len(overdue)} more: export compliance.csv with status=overdue "
                    "for the full list.",
                    styles["small"],
                )
            )
    else:
        story.append(Paragraph("None.", styles["body"]))
    story.append(Spacer(1, 4 * mm))

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(GREY)
        canvas.drawString(15 * mm, 8 * mm, f"{org.get('name') or ''} · compliance report")
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, f"page {document.page}")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
