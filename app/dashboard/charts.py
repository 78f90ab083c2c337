"""The dashboard's charts, drawn on the server as SVG with pygal: no chart script in the
browser, nothing fetched from anywhere, the same picture in every browser.

Each SVG holds two drawings of the same chart, one laid out for a wide box and one for a
phone's, and its own media query shows the one that fits the box the image is shown in
(an SVG image's media queries see the image's size). Both have the same proportions, so
the image's box never changes; on a phone the narrow one's labels are about 13 px
instead of 8, and fewer, so that they never touch."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pygal
from pygal.style import Style

from app.analytics.schemas import CategoryUnits, DailyRevenue

WINDOW = 7
MAX_DOTS = 62  # past about two months, dots hide the line
SVG_NS = "http://www.w3.org/2000/svg"


@dataclass(frozen=True)
class Layout:
    """One drawing of a chart: its name (a CSS class), size in SVG units, and at most
    how many value labels its axis has room for."""

    name: str
    width: int
    height: int
    max_scale: int


# The narrow drawing is 0.6 of the wide one: shown 330 px wide on a phone it is drawn
# at 0.92 scale instead of 0.55. The switch sits between a phone's box and a desktop's.
NARROW_BELOW_PX = 480
DAILY = (Layout("wide", 600, 340, 10), Layout("narrow", 360, 204, 5))
CATEGORIES = (Layout("wide", 600, 220, 10), Layout("narrow", 360, 132, 5))
# Room left of and around the plot (y labels, title, margins), in SVG units at 14 px text.
Y_AXIS_ROOM = 90
LABEL_FONT = 14
CHAR_WIDTH = 0.62  # of the font size: a wide estimate for digits and short month names

BLUE, AMBER, INK, GREEN = "#1d4ed8", "#b45309", "#1b1f24", "#047857"

STYLE: dict[str, Any] = {
    "background": "transparent",
    "plot_background": "transparent",
    "foreground": INK,
    "foreground_strong": INK,
    "foreground_subtle": "#d1d5db",
    "guide_stroke_color": "#d1d5db",
    "guide_stroke_dasharray": "0",
    "major_guide_stroke_color": "#d1d5db",
    "major_guide_stroke_dasharray": "0",
    "stroke_width": "2.5",
    "value_colors": ("#ffffff",),
    "transition": "none",
    "colors": (BLUE, AMBER),
    "font_family": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
    "label_font_size": 14,
    "major_label_font_size": 14,
    "legend_font_size": 15,
    "value_font_size": 15,
    "tooltip_font_size": 13,
    "title_font_size": 16,
}

# `js=[]`: pygal links a tooltip script from its website by default; nothing may load.
COMMON: dict[str, Any] = {
    "js": [],
    "margin": 12,
    "legend_at_bottom": True,
    "legend_at_bottom_columns": 2,
    "show_y_guides": True,
    "show_x_guides": False,
    "truncate_label": -1,
    "truncate_legend": -1,
    "print_values": False,
}


class Currency(StrEnum):
    BRL = "BRL"
    USD = "USD"


def moving_average(values: Sequence[float], window: int = WINDOW) -> list[float]:
    """The mean of each value and the `window - 1` before it (fewer at the start): the
    definition of the API's `revenue_brl_7d_avg`, applied to a series the API has no
    average for (USD)."""
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def date_labels(days: Sequence[date], room: float) -> tuple[list[str], list[str], str]:
    """Every day's label, the ones to print (evenly spaced, as many as fit side by side in
    `room` SVG units, none on the first day, whose label would run into the value axis'
    "0"), and the axis title that says the months and years they are in."""
    if not days:
        return [], [], ""
    long_span = (days[-1] - days[0]).days > 180
    shown = [f"{d:%b %Y}" if long_span else f"{d.day} {d:%b}" for d in days]
    widest = max(map(len, shown)) * LABEL_FONT * CHAR_WIDTH + LABEL_FONT  # plus a gap
    fit = max(1, math.floor(room / widest))
    step = max(1, math.ceil(len(days) / fit))
    printed = set(range(step // 2 if step > 1 else 0, len(days), step))
    # Labels not printed are ISO dates: unique, so that none equals a printed one.
    labels = [shown[i] if i in printed else d.isoformat() for i, d in enumerate(days)]
    first, last = f"{days[0]:%b %Y}", f"{days[-1]:%b %Y}"
    title = first if first == last else f"{first} – {last}"
    return labels, [labels[i] for i in sorted(printed)], title


def daily_revenue(items: Sequence[DailyRevenue], currency: Currency) -> bytes:
    """Revenue per day in one currency, with its 7-day moving average, as SVG."""
    if currency is Currency.BRL:
        daily = [float(Decimal(i.revenue_brl)) for i in items]
        average = [float(Decimal(i.revenue_brl_7d_avg)) for i in items]
    else:
        daily = [float(Decimal(i.revenue_usd)) for i in items]
        average = moving_average(daily)

    def draw(layout: Layout) -> Any:
        labels, printed, title = date_labels([i.date for i in items], layout.width - Y_AXIS_ROOM)
        chart = pygal.Line(
            **COMMON,
            width=layout.width,
            height=layout.height,
            max_scale=layout.max_scale,
            # Opacity is the area under the daily line.
            style=Style(**STYLE, opacity=".15", opacity_hover=".2"),
            show_minor_x_labels=False,
            value_formatter=lambda v: f"{v:,.0f}",
            y_title=currency.value,
            x_title=title or None,
            include_x_axis=True,
            no_data_text="No orders",
        )
        chart.x_labels = labels
        chart.x_labels_major = printed
        if items:
            chart.add(
                f"Daily revenue ({currency.value})" if layout.name == "wide" else "Daily",
                daily,
                fill=True,
                dots_size=3,
                show_dots=len(items) <= MAX_DOTS,
            )
            chart.add(
                f"{WINDOW}-day average" if layout.name == "wide" else f"{WINDOW}-day avg.",
                average,
                show_dots=False,
                stroke_style={"width": 3, "dasharray": "8, 5"},
            )
        return chart

    return _render(draw, DAILY)


def top_categories(categories: Sequence[CategoryUnits]) -> bytes:
    """Units sold in the top categories, the first on top, as SVG."""
    # pygal draws the first label at the bottom.
    ranked = list(reversed(categories))

    def draw(layout: Layout) -> Any:
        chart = pygal.HorizontalBar(
            **{**COMMON, "show_legend": False, "print_values": True},
            width=layout.width,
            height=layout.height,
            max_scale=layout.max_scale,
            style=Style(**STYLE, opacity=".9", opacity_hover="1"),
            value_formatter=lambda v: f"{v:,.0f}",
            x_title="Units sold",
            no_data_text="No orders",
        )
        chart.x_labels = [c.category for c in ranked]
        if ranked:
            chart.add("Units", [c.quantity for c in ranked])
        return chart

    return _render(draw, CATEGORIES)


def _drawing(chart: Any, name: str) -> ET.Element:
    """One pygal chart as an `<svg>` element, without the script pygal always adds (an
    image needs none), named `name` instead of its random uuid (the same data then
    draws the same bytes, and two drawings in one document keep their styles apart)."""
    root: ET.Element = chart.render_tree()
    uuid, fixed = chart.uuid, f"orderlens-{name}"
    for parent in list(root.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
        for key, value in parent.attrib.items():
            parent.set(key, value.replace(uuid, fixed))
        if parent.text:
            parent.text = parent.text.replace(uuid, fixed)  # its CSS names the uuid too
    return root


def _render(draw: Callable[[Layout], Any], layouts: tuple[Layout, Layout]) -> bytes:
    """The chart drawn for each layout, in one SVG the size of the first, each drawing
    shown only in the image sizes it is laid out for."""
    wide = layouts[0]
    outer = ET.Element(
        f"{{{SVG_NS}}}svg",
        {"width": str(wide.width), "height": str(wide.height)},
        viewBox=f"0 0 {wide.width} {wide.height}",
    )
    style = ET.SubElement(outer, f"{{{SVG_NS}}}style")
    below = f"{NARROW_BELOW_PX - 0.02:.2f}px"
    style.text = (
        f"@media (max-width: {below}) {{ .layout-wide {{ display: none }} }}"
        f" @media not all and (max-width: {below}) {{ .layout-narrow {{ display: none }} }}"
    )
    for layout in layouts:
        drawing = _drawing(draw(layout), layout.name)
        drawing.set("class", f"{drawing.get('class', '')} layout-{layout.name}".strip())
        drawing.set("width", str(wide.width))
        drawing.set("height", str(wide.height))
        outer.append(drawing)
    ET.register_namespace("", SVG_NS)
    svg: bytes = ET.tostring(outer, encoding="utf-8", xml_declaration=True)
    return svg


# Two legend rows on a phone: the same height as the daily charts, so the plot keeps room.
FORECAST = (Layout("wide", 600, 340, 8), Layout("narrow", 360, 204, 4))
LEGEND_BOX = 12  # pygal's legend_box_size


def _legend_room_missed(series: int, entries: int, columns: int) -> int:
    """The room, in SVG units, that pygal leaves out under a bottom legend of `entries`
    (of `series`): it reserves `series // columns` rows, then draws all the entries' rows,
    a last one that is not full past the image's bottom edge (pygal 3.1,
    `Graph._compute_margin`)."""
    row = 1.5 * max(int(STYLE["legend_font_size"]), LEGEND_BOX)
    return math.ceil(row * (math.ceil(entries / columns) - series // columns))


# What a level's `unallocated` is, in the legend: demand no product's forecast holds.
UNALLOCATED = "Products not yet selling"
UNALLOCATED_SHORT = "Not yet selling"  # on a phone, in the second of two columns


def forecast(
    history: Sequence[tuple[date, float]], items: Sequence[Any], *, unallocated: bool = False
) -> bytes:
    """A product's or a level's last days of units sold, then its forecast and the
    forecast's 80% band (drawn as its two bounds), as SVG; with `unallocated`, a level's
    part of the forecast that no product's own forecast holds, as a line of its own."""
    days = [d for d, _ in history] + [i.date for i in items]
    past = [q for _, q in history] + [None] * len(items)
    ahead = [None] * len(history) + [i.quantity for i in items]
    low = [None] * len(history) + [i.lo_80 for i in items]
    high = [None] * len(history) + [i.hi_80 for i in items]
    spare = [None] * len(history) + [i.unallocated for i in items] if unallocated else []

    def draw(layout: Layout) -> Any:
        labels, printed, title = date_labels(days, layout.width - Y_AXIS_ROOM)
        wide = layout.name == "wide"
        columns = 4 if wide else 2
        # On a phone a level's legend keeps two rows: one "80% band" for both bounds, and
        # the short name of the new products' line.
        band = bool(spare) and not wide
        series = 5 if spare else 4
        chart = pygal.Line(
            **{**COMMON, "legend_at_bottom_columns": columns},
            margin_bottom=COMMON["margin"] + _legend_room_missed(series, series - band, columns),
            width=layout.width,
            height=layout.height,
            max_scale=layout.max_scale,
            style=Style(**{**STYLE, "colors": (INK, BLUE, AMBER, AMBER, GREEN)}, opacity=".1"),
            show_minor_x_labels=False,
            value_formatter=lambda v: f"{v:,.1f}",
            y_title="Units",
            x_title=title or None,
            include_x_axis=True,
            no_data_text="No forecast",
        )
        chart.x_labels = labels
        chart.x_labels_major = printed
        if days:
            chart.add("Sold", past, show_dots=False)
            # The model is named beside the chart (the panel's caption), not in the legend:
            # a legend column is a quarter of the width, and "Forecast (CrostonOptimized)"
            # ran into "80% low".
            chart.add("Forecast", ahead, show_dots=False)
            dashed = {"width": 2, "dasharray": "4, 4"}
            chart.add("80% band" if band else "80% low", low, show_dots=False, stroke_style=dashed)
            # A series without a title has no legend entry (pygal).
            chart.add(None if band else "80% high", high, show_dots=False, stroke_style=dashed)
            if spare:
                # Last, so that on a desktop its long name is alone on its legend row.
                dotted = {"width": 2.5, "dasharray": "1, 4", "linecap": "round"}
                name = UNALLOCATED if wide else UNALLOCATED_SHORT
                chart.add(name, spare, show_dots=False, stroke_style=dotted)
        return chart

    return _render(draw, FORECAST)
