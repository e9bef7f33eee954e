"""The page layout every PDF of the web app shares, drawn with reportlab.

    story = [
        *section("Overdue assignments", data_table(rows, widths, numeric_from=4)),
        *section("Sessions", None, empty="No sessions recorded."),
    ]
    pdf = build_pdf(story, paper="letter", title="Training record", author="Ann Arbor …",
                    generated="2026-03-08 09:15 (America/Detroit)")

- Paper: ``letter`` (216 x 279 mm) or ``a4`` (210 x 297 mm), margins of 15 mm; tables and charts
  are laid out for :func:`frame_width` of the smaller one (180 mm), so one story fits both.
- Every page: a footer with the title, the generation time and "page N of M" (the total is
  known after a first pass: :class:`NumberedCanvas` keeps each page until the document is
  complete); from page 2 on, a header with the title.
- A section's heading never stands alone: it goes to the next page unless the header row and the
  first rows of its table fit under it (:func:`section`); long tables repeat their header row on
  each page. A section with nothing to show says so in one line (no empty box, no empty table).
- Metadata: title, author, subject and creator of the document.

Plain, blocking code: the web app runs it in a worker thread.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.enums import TA_RIGHT  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4, LETTER  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    PageTemplate,
    Paragraph,
    Table,
    TableStyle,
)

__all__ = [
    "GREEN",
    "GREY",
    "HEADER_BG",
    "PAPER_SIZES",
    "RED",
    "TEXT_LIMIT",
    "DataTable",
    "NumberedCanvas",
    "build_pdf",
    "data_table",
    "esc",
    "frame_width",
    "section",
    "styles",
]

#: Paper sizes by the name an organisation's ``paper_size`` setting holds, in points.
PAPER_SIZES: dict[str, tuple[float, float]] = {"letter": LETTER, "a4": A4}
MARGIN = 15 * mm
#: The footer's baseline, from the bottom edge (inside the bottom margin).
FOOTER_Y = 8 * mm
#: Rows of a table (below its header row) that must fit on the page of the section heading.
KEEP_ROWS = 3

GREEN = colors.HexColor("#1b7f3b")
RED = colors.HexColor("#b3261e")
GREY = colors.HexColor("#5f6368")
HEADER_BG = colors.HexColor("#e8eaed")

#: The longest text printed in one cell or line: a longer stored value (a name of any length) is
#: cut with an ellipsis, so that every row still fits on a page.
TEXT_LIMIT = 200


def esc(value: Any) -> str:
    """``value`` as paragraph markup: None as empty, cut at :data:`TEXT_LIMIT`, ``&<>`` escaped."""
    text = "" if value is None else str(value)
    if len(text) > TEXT_LIMIT:
        text = text[: TEXT_LIMIT - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def paper_size(paper: str) -> tuple[float, float]:
    try:
        return PAPER_SIZES[paper]
    except KeyError:
        raise ValueError(
            f"paper must be one of {', '.join(sorted(PAPER_SIZES))}, not {paper!r}"
        ) from None


def frame_width(paper: str | None = None) -> float:
    """The width (points) a story may use: that of ``paper``, or of the narrower size if None."""
    sizes = [paper_size(paper)] if paper else list(PAPER_SIZES.values())
    return float(min(size[0] for size in sizes) - 2 * MARGIN)


def styles() -> dict[str, ParagraphStyle]:
    """Paragraph styles: title, h2 (section heading), body, small (notes), cell, num."""
    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("title", parent=base["Title"], alignment=0, spaceAfter=2 * mm),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], spaceBefore=5 * mm, spaceAfter=2 * mm),
        "body": base["BodyText"],
        "small": ParagraphStyle("small", parent=base["BodyText"], fontSize=8, textColor=GREY),
        "cell": ParagraphStyle("cell", parent=base["BodyText"], fontSize=8, leading=10),
        "num": ParagraphStyle("num", parent=base["BodyText"], fontSize=8, alignment=TA_RIGHT),
    }


class DataTable(Table):  # type: ignore[misc]
    """A table that remembers its rows, widths and style, so that its head can be measured.

    Its constructor is Table's (a split makes its parts with it), plus ``commands``: the style.
    """

    def __init__(
        self,
        data: list[list[Any]],
        colWidths: Any = None,
        *args: Any,
        commands: Sequence[Any] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(data, colWidths, *args, **kwargs)
        self.data_rows = data
        self.widths = colWidths
        self.commands = list(commands)
        if commands:
            self.setStyle(TableStyle(self.commands))

    def head(self, rows: int) -> Table:
        """The header row and the first ``rows`` rows, styled alike (for measuring)."""
        kept = self.data_rows[: 1 + rows]
        last = len(kept) - 1
        commands = [c for c in self.commands if _within(c, last)]
        table = Table(kept, colWidths=self.widths)
        table.setStyle(TableStyle(commands))
        return table


def _within(command: Any, last_row: int) -> bool:
    """Whether a style command addresses only rows up to ``last_row`` (negatives are relative)."""
    try:
        start, stop = command[1][1], command[2][1]
    except (IndexError, TypeError):
        return True
    return all(row < 0 or row <= last_row for row in (start, stop))


def data_table(
    rows: list[list[Any]], widths: Sequence[float], numeric_from: int | None = None
) -> DataTable:
    """A table whose first row is its header (bold, shaded, repeated on each page), zebra rows,
    8 pt text; columns from ``numeric_from`` on are right-aligned."""
    commands: list[Any] = [
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, GREY),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f8f9fa")]),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if numeric_from is not None:
        commands.append(("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"))
    return DataTable(rows, list(widths), repeatRows=1, commands=commands)


class _RoomFor(CondPageBreak):  # type: ignore[misc]
    """A page break taken only when the heading and the head of what follows do not fit."""

    def __init__(self, parts: list[Flowable]) -> None:
        super().__init__(0)
        self.parts = parts

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        height = 0.0
        for part in self.parts:
            height += part.wrap(avail_width, 10_000)[1] + part.getSpaceBefore()
            height += part.getSpaceAfter()
        self.height = height
        return super().wrap(avail_width, avail_height)  # type: ignore[no-any-return]


def section(
    heading: str,
    body: Flowable | Sequence[Flowable] | None,
    *,
    empty: str = "None.",
    keep_rows: int = KEEP_ROWS,
    heading_style: ParagraphStyle | None = None,
) -> list[Flowable]:
    """A heading and what it introduces, kept together at its start.

    ``body``: a table (a :class:`DataTable`: its heading goes to the next page unless the header
    row and ``keep_rows`` rows fit under it; the rest may run on, its header repeated), another
    flowable or a list of them (the first is kept with the heading). None, an empty list or a
    table without data rows: the heading and one line, ``empty``.
    ``heading`` is plain text (escaped here).
    """
    style = heading_style or styles()["h2"]
    title = Paragraph(esc(heading), style)
    if body is None or (isinstance(body, Sequence) and not body):
        flowables: list[Flowable] = [Paragraph(esc(empty), styles()["body"])]
    elif isinstance(body, Sequence):
        flowables = list(body)
    else:
        flowables = [body]
    first = flowables[0]
    if isinstance(first, DataTable):
        if len(first.data_rows) <= 1:
            flowables[0] = first = Paragraph(esc(empty), styles()["body"])
            measured: Flowable = first
        else:
            measured = first.head(keep_rows)
    else:
        measured = first
    return [_RoomFor([Paragraph(esc(heading), style), measured]), title, *flowables]


class NumberedCanvas(Canvas):  # type: ignore[misc]
    """A canvas that draws "page N of M": it keeps every page until the document is complete."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        self.footer_left = ""
        self.header_text = ""

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self._decorate(total)
            super().showPage()
        super().save()

    def _decorate(self, total: int) -> None:
        width, height = self._pagesize
        self.saveState()
        self.setFont("Helvetica", 7)
        self.setFillColor(GREY)
        self.drawString(MARGIN, FOOTER_Y, self.footer_left)
        self.drawRightString(width - MARGIN, FOOTER_Y, f"page {self._pageNumber} of {total}")
        if self._pageNumber > 1 and self.header_text:
            self.drawString(MARGIN, height - MARGIN + 3 * mm, self.header_text)
        self.restoreState()


def build_pdf(
    story: list[Flowable],
    *,
    paper: str,
    title: str,
    generated: str,
    author: str,
    subject: str = "",
) -> bytes:
    """The PDF of ``story`` on ``paper`` ('letter' or 'a4'; ValueError otherwise).

    ``title``: the document title (metadata, header from page 2, footer); ``generated``: when,
    as the reader should see it (e.g. "2026-03-08 09:15 (America/Detroit)"); ``author``: who
    issues it (the organisation's name).
    """
    size = paper_size(paper)
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=size,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=title,
        author=author,
        subject=subject or title,
        creator="Compliance Training Manager",
    )
    frame = Frame(
        doc.leftMargin,
        doc.bottomMargin,
        doc.width,
        doc.height,
        id="body",
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
    )
    footer_left = " · ".join(part for part in (author, title, f"generated {generated}") if part)

    def label(canvas: Any, _doc: Any) -> None:
        canvas.footer_left = footer_left
        canvas.header_text = title

    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=label)])
    doc.build(story, canvasmaker=NumberedCanvas)
    return buffer.getvalue()
