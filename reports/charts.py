"""Server-side SVG charts: small, self-contained markup (no JavaScript, no fonts or images to
fetch), so the same string renders in the browser and in WeasyPrint PDFs.

Sizing: the <svg> has a viewBox and width/height attributes (its size in CSS px). Browsers
scale it with `.edc-chart { max-width: 100%; height: auto }` (static/css/edc.css). In
WeasyPrint, give both a width and a height (e.g. `svg.edc-chart { width: 85mm; height: 44mm }`)
or none: WeasyPrint 66 lays out `height: auto` on inline SVG as a box far taller than the chart.

Every function returns a SafeString holding one <svg> element. Each plotted point is a
<circle data-series=... data-category=...> with a <title> (the value on hover)."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .statistics import Step

WIDTH, HEIGHT = 460, 240
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 14, 40, 42
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'
AXIS = "#495057"
GRID = "#e9ecef"

# Colours (Bootstrap's palette, readable in print).
GREEN, GREY, BLUE, ORANGE, PURPLE, PINK = (
    "#198754",
    "#6c757d",
    "#0d6efd",
    "#fd7e14",
    "#6f42c1",
    "#d63384",
)


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]  # one per category; None = no data there
    color: str
    dash: str = ""  # stroke-dasharray, e.g. "5 3"
    notes: Sequence[str] = field(default_factory=tuple)  # per category, added to the hover text


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 and round steps up to at least `top` (1, 2, 2.5 or 5 x a power of ten)."""
    if top <= 0:
        top = 1.0
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


class _Canvas:
    """Plot area and the SVG elements drawn so far."""

    def __init__(self, *, title: str, width: int = WIDTH, height: int = HEIGHT):
        self.width, self.height = width, height
        self.left, self.top = MARGIN_LEFT, MARGIN_TOP
        self.right = width - MARGIN_RIGHT
        self.bottom = height - MARGIN_BOTTOM
        self.title = title
        self.parts: list[str] = []

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def text(self, x, y, content, *, size=11, anchor="middle", color=AXIS, weight="normal"):
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{color}" font-weight="{weight}" {FONT}>{escape(content)}</text>'
        )

    def y_axis(self, ticks: list[float], label: str, fmt=_number) -> None:
        top = ticks[-1]
        for t in ticks:
            y = self.y_of(t, top)
            self.add(
                f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.right}" y2="{y:.1f}" '
                f'stroke="{GRID}" stroke-width="1"/>'
            )
            self.text(self.left - 6, y + 4, fmt(t), size=10, anchor="end")
        self.add(
            f'<line x1="{self.left}" y1="{self.top}" x2="{self.left}" y2="{self.bottom}" '
            f'stroke="{AXIS}" stroke-width="1"/>'
        )
        middle = (self.top + self.bottom) / 2
        self.add(
            f'<text x="14" y="{middle:.1f}" font-size="10" text-anchor="middle" fill="{AXIS}" '
            f'transform="rotate(-90 14 {middle:.1f})" {FONT}>{escape(label)}</text>'
        )

    def x_axis(self) -> None:
        self.add(
            f'<line x1="{self.left}" y1="{self.bottom}" x2="{self.right}" y2="{self.bottom}" '
            f'stroke="{AXIS}" stroke-width="1"/>'
        )

    def y_of(self, value: float, top: float) -> float:
        return self.bottom - (value / top) * (self.bottom - self.top) if top else self.bottom

    def legend(self, items: Sequence[tuple[str, str, str]]) -> None:
        """(label, colour, dash) in a row under the title."""
        x = self.left
        for label, color, dash in items:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            self.add(
                f'<line x1="{x}" y1="30" x2="{x + 18}" y2="30" stroke="{color}" '
                f'stroke-width="2"{dash_attr}/>'
            )
            self.text(x + 22, 34, label, size=10, anchor="start")
            x += 30 + 6.2 * len(label)

    def empty(self, message: str) -> None:
        self.text((self.left + self.right) / 2, (self.top + self.bottom) / 2, message, size=12)

    def render(self) -> SafeString:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="edc-chart" '
            f'viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
            f'height="{self.height}" role="img">'
            f"<title>{escape(self.title)}</title>"
            f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="#ffffff"/>'
        )
        self.parts.insert(0, head)
        self.text(
            self.left, 16, self.title, size=12, anchor="start", color="#212529", weight="bold"
        )
        return mark_safe("".join(self.parts) + "</svg>")  # noqa: S308 - every text is escaped


def line_chart(
    *,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    y_label: str,
    reference: tuple[float, str] | None = None,
    category_notes: Sequence[str] = (),
    empty_message: str = "No data yet",
) -> SafeString:
    """Values per category (visits), one polyline per series through the categories that
    have a value; `reference` draws a dashed horizontal line (value, label)."""
    canvas = _Canvas(title=title)
    values = [v for s in series for v in s.values if v is not None]
    if not categories or not values:
        canvas.x_axis()
        canvas.empty(empty_message)
        return canvas.render()
    top_value = max(values + ([reference[0]] if reference else []))
    ticks = nice_ticks(top_value * 1.05)
    top = ticks[-1]
    canvas.y_axis(ticks, y_label)
    canvas.x_axis()
    span = canvas.right - canvas.left
    slot = span / len(categories)

    def x_of(i: int) -> float:
        return canvas.left + slot * (i + 0.5)

    for i, category in enumerate(categories):
        canvas.text(x_of(i), canvas.bottom + 14, category, size=10)
        if i < len(category_notes) and category_notes[i]:
            canvas.text(x_of(i), canvas.bottom + 26, category_notes[i], size=8)
    if reference is not None:
        y = canvas.y_of(reference[0], top)
        canvas.add(
            f'<line x1="{canvas.left}" y1="{y:.1f}" x2="{canvas.right}" y2="{y:.1f}" '
            f'stroke="{GREY}" stroke-width="1" stroke-dasharray="2 3"/>'
        )
        canvas.text(canvas.right - 2, y - 3, reference[1], size=9, anchor="end", color=GREY)
    canvas.legend([(s.label, s.color, s.dash) for s in series])
    for s in series:
        points = [
            (i, x_of(i), canvas.y_of(v, top), v) for i, v in enumerate(s.values) if v is not None
        ]
        if len(points) > 1:
            dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            coords = " ".join(f"{x:.1f},{y:.1f}" for _, x, y, _ in points)
            canvas.add(
                f'<polyline points="{coords}" fill="none" stroke="{s.color}" '
                f'stroke-width="2"{dash}/>'
            )
        for i, x, y, v in points:
            note = f" ({s.notes[i]})" if i < len(s.notes) and s.notes[i] else ""
            canvas.add(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{s.color}" '
                f'data-series="{escape(s.label)}" data-category="{escape(categories[i])}">'
                f"<title>{escape(f'{s.label}, {categories[i]}: {v:g}{note}')}</title></circle>"
            )
    return canvas.render()


# Semen finding per visit, bottom to top.
SPERM_LEVELS = (
    ("NONE", "No sperm"),
    ("PELLET", "Pellet only"),
    ("FRESH", "Fresh sample"),
)


def sperm_chart(
    *, title: str, categories: Sequence[str], findings: Sequence[str | None], notes=()
) -> SafeString:
    """The semen finding of each visit (none / pellet only / fresh sample) as one point per
    visit with an analysis; green when sperm was found."""
    canvas = _Canvas(title=title, height=170)
    if not categories or not any(f is not None for f in findings):
        canvas.x_axis()
        canvas.empty("No semen analysis yet")
        return canvas.render()
    canvas.left = 92
    canvas.x_axis()
    rows = len(SPERM_LEVELS)
    row_height = (canvas.bottom - canvas.top) / rows
    level_y = {}
    for r, (code, label) in enumerate(SPERM_LEVELS):
        y = canvas.bottom - row_height * (r + 0.5)
        level_y[code] = y
        canvas.add(
            f'<line x1="{canvas.left}" y1="{y:.1f}" x2="{canvas.right}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        canvas.text(canvas.left - 6, y + 4, label, size=10, anchor="end")
    slot = (canvas.right - canvas.left) / len(categories)
    for i, category in enumerate(categories):
        x = canvas.left + slot * (i + 0.5)
        canvas.text(x, canvas.bottom + 14, category, size=10)
        finding = findings[i]
        if finding is None:
            continue
        color = GREY if finding == "NONE" else GREEN
        label = dict(SPERM_LEVELS)[finding]
        note = f" ({notes[i]})" if i < len(notes) and notes[i] else ""
        canvas.add(
            f'<circle cx="{x:.1f}" cy="{level_y[finding]:.1f}" r="5" fill="{color}" '
            f'data-series="sperm" data-category="{escape(category)}">'
            f"<title>{escape(f'{category}: {label}{note}')}</title></circle>"
        )
    return canvas.render()


def step_chart(
    *,
    title: str,
    steps: Sequence[Step],
    censored: Sequence[tuple[int, float]] = (),
    x_label: str,
    y_label: str,
    caption: str = "",
) -> SafeString:
    """A Kaplan-Meier style cumulative curve (proportion 0..1 shown as %) over days, with a
    tick (+) where a patient was censored."""
    canvas = _Canvas(title=title)
    if not steps:
        canvas.x_axis()
        canvas.empty("No follow-up semen analysis yet")
        return canvas.render()
    top_proportion = max(s.proportion for s in steps)
    ticks = nice_ticks(max(top_proportion * 100 * 1.1, 10))
    top = ticks[-1]
    canvas.y_axis(ticks, y_label, fmt=lambda t: f"{t:g}%")
    canvas.x_axis()
    last_day = max([s.day for s in steps] + [d for d, _ in censored]) or 1
    x_ticks = nice_ticks(last_day, count=6)
    x_top = x_ticks[-1]

    def x_of(day: float) -> float:
        return canvas.left + (day / x_top) * (canvas.right - canvas.left)

    for t in x_ticks:
        canvas.text(x_of(t), canvas.bottom + 14, _number(t), size=10)
    canvas.text((canvas.left + canvas.right) / 2, canvas.bottom + 30, x_label, size=10)
    path = []
    previous = None
    for s in steps:
        x, y = x_of(s.day), canvas.y_of(s.proportion * 100, top)
        if previous is not None:
            path.append(f"L{x:.1f},{previous:.1f}")
        path.append(f"{'M' if previous is None else 'L'}{x:.1f},{y:.1f}")
        previous = y
    canvas.add(f'<path d="{" ".join(path)}" fill="none" stroke="{GREEN}" stroke-width="2"/>')
    for s in steps[1:]:
        if s.proportion > 0:
            canvas.add(
                f'<circle cx="{x_of(s.day):.1f}" cy="{canvas.y_of(s.proportion * 100, top):.1f}" '
                f'r="2.5" fill="{GREEN}" data-series="cumulative" data-category="{s.day}">'
                f"<title>Day {s.day}: {s.proportion * 100:.1f}% with sperm "
                f"({s.at_risk} still followed without sperm)</title></circle>"
            )
    for day, proportion in censored:
        x, y = x_of(day), canvas.y_of(proportion * 100, top)
        canvas.add(
            f'<path d="M{x - 3:.1f},{y:.1f} L{x + 3:.1f},{y:.1f} M{x:.1f},{y - 3:.1f} '
            f'L{x:.1f},{y + 3:.1f}" stroke="{GREY}" stroke-width="1.2" data-censored="{day}"/>'
        )
    if caption:
        canvas.text(canvas.right, 30, caption, size=9, anchor="end", color=GREY)
    return canvas.render()
