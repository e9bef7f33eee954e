"""Look at a PDF the way a reader does: render it with poppler (pdfinfo, pdftotext, pdftoppm).

    pages = assert_pages(pdf, paper="letter", headings=["Summary", ("Overdue assignments", "Due")])

:func:`render` gives, per page: its size in points, its text (``pdftotext -layout``), ``ink`` (the
fraction of pixel rows holding anything not white) and ``fill`` (how far down the page body the
content reaches, 0..1, the footer below the bottom margin not counted).
:func:`assert_pages` checks the paper size of every page, that there is a page, "page N of M" on
each, that each heading is on the same page as the first row under it, and that no page but the
last is more than half empty (``fill`` >= 0.5).

Needs poppler-utils (bin/test installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from web.pdf_layout import MARGIN, PAPER_SIZES

#: Resolution of the page images: enough to see a line of 7 pt text, cheap to scan.
DPI = 36
#: A pixel darker than this (0 black .. 255 white) is ink.
WHITE = 250


@dataclass
class Page:
    number: int
    width: float
    height: float
    text: str
    ink: float
    fill: float

    def lines(self) -> list[str]:
        """The page's non-blank text lines, whitespace collapsed."""
        return [_squash(line) for line in self.text.splitlines() if line.strip()]


def _squash(text: str) -> str:
    return " ".join(text.split())


def _run(*args: str) -> str:
    tool = shutil.which(args[0])
    assert tool, f"{args[0]} is missing: install poppler-utils (bin/test does)"
    done = subprocess.run([tool, *args[1:]], capture_output=True, check=False, timeout=120)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr.decode(errors='replace')}"
    return done.stdout.decode("utf-8", errors="replace")


def _pgm(path: Path) -> tuple[int, int, bytes]:
    """Width, height and pixels of a binary greyscale PGM (what ``pdftoppm -gray`` writes)."""
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P5", f"{path.name}: not a binary PGM"
    width, height, maxval = int(fields[1]), int(fields[2]), int(fields[3])
    assert maxval == 255, f"{path.name}: {maxval}-level PGM"
    pixels = data[pos + 1 : pos + 1 + width * height]
    assert len(pixels) == width * height, f"{path.name}: truncated"
    return width, height, pixels


def _ink_rows(path: Path) -> tuple[list[bool], int]:
    width, height, pixels = _pgm(path)
    rows = [min(pixels[y * width : (y + 1) * width]) < WHITE for y in range(height)]
    return rows, height


def render(pdf: bytes) -> list[Page]:
    """Every page of ``pdf``: size, text, ink and fill (see the module's docstring)."""
    assert pdf.startswith(b"%PDF-"), f"not a PDF: {pdf[:40]!r}"
    with tempfile.TemporaryDirectory(prefix="pdf-check-") as tmp:
        source = Path(tmp) / "doc.pdf"
        source.write_bytes(pdf)
        info = _run("pdfinfo", "-f", "1", "-l", "100000", str(source))
        count = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]
        sizes = {
            int(m[1]): (float(m[2]), float(m[3]))
            for m in re.finditer(r"^Page\s+(\d+) size:\s+([\d.]+) x ([\d.]+) pts", info, re.M)
        }
        texts = _run("pdftotext", "-layout", "-enc", "UTF-8", str(source), "-").split("\f")
        _run("pdftoppm", "-gray", "-r", str(DPI), str(source), str(Path(tmp) / "p"))
        images = sorted(Path(tmp).glob("p-*.pgm"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        assert len(images) == count, f"pdftoppm drew {len(images)} of {count} pages"
        pages: list[Page] = []
        for number, image in enumerate(images, start=1):
            rows, height = _ink_rows(image)
            body_end = height - round(MARGIN / 72 * DPI)  # below: the footer
            lowest = max((y for y in range(body_end) if rows[y]), default=-1)
            width_pt, height_pt = sizes[number]
            pages.append(
                Page(
                    number=number,
                    width=width_pt,
                    height=height_pt,
                    text=texts[number - 1] if number - 1 < len(texts) else "",
                    ink=sum(rows) / height,
                    fill=(lowest + 1) / body_end,
                )
            )
        return pages


def find(pages: Sequence[Page], text: str) -> tuple[Page, int]:
    """The first page holding the line ``text`` starts, and the line's index on that page."""
    wanted = _squash(text)
    for page in pages:
        for index, line in enumerate(page.lines()):
            if line.startswith(wanted):
                return page, index
    raise AssertionError(f"{text!r} is on no page")


def assert_pages(
    pdf: bytes,
    *,
    paper: str,
    headings: Sequence[str | tuple[str, str]] = (),
) -> list[Page]:
    """Check the rendered ``pdf`` (see the module's docstring) and return its pages.

    ``headings``: a heading, or (heading, text of the first row under it). The heading line must
    start with it; the first row must be on the same page, after it — any line that is not the
    footer when no text is given.
    """
    pages = render(pdf)
    assert pages, "the PDF has no page"
    want_w, want_h = PAPER_SIZES[paper]
    total = len(pages)
    for page in pages:
        size = f"page {page.number} is {page.width:.0f} x {page.height:.0f} pt, not {paper}"
        assert abs(page.width - want_w) < 1, f"{size} ({want_w:.0f} pt wide)"
        assert abs(page.height - want_h) < 1, f"{size} ({want_h:.0f} pt high)"
        assert f"page {page.number} of {total}" in _squash(page.text), (
            f"page {page.number}: no 'page {page.number} of {total}' in {page.lines()[-3:]}"
        )
        if page.number < total:
            assert page.fill >= 0.5, (
                f"page {page.number} of {total} is more than half empty (content reaches "
                f"{page.fill:.0%} of the page body)"
            )
    footer = re.compile(r"page \d+ of \d+$")
    for item in headings:
        heading, first_row = (item, None) if isinstance(item, str) else item
        page, index = find(pages, heading)
        below = [line for line in page.lines()[index + 1 :] if not footer.search(line)]
        assert below, f"{heading!r} is the last thing on page {page.number}: its rows are not"
        if first_row is not None:
            assert any(_squash(first_row) in line for line in below), (
                f"{heading!r} is on page {page.number} but the row {first_row!r} is not under it "
                f"there: {below[:5]}"
            )
    return pages
