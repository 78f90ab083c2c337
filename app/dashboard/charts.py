"""The dashboard's charts, drawn on the server as SVG with pygal: no chart script in the
browser, nothing fetched from anywhere, the same picture in every browser."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pygal
from pygal.style import Style

from app.analytics.schemas import CategoryUnits, DailyRevenue

WINDOW = 7
MAX_X_LABELS = 12
ROTATE_AFTER = 6
MAX_DOTS = 62  # past about two months, dots hide the line

BLUE, AMBER, INK = "#1d4ed8", "#b45309", "#1b1f24"

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
    "width": 600,
    "height": 340,
    "margin": 12,
    "legend_at_bottom": True,
    "legend_at_bottom_columns": 2,
    "show_y_guides": True,
    "show_x_guides": False,
    "truncate_label": -1,
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


def daily_revenue(items: Sequence[DailyRevenue], currency: Currency) -> bytes:
    """Revenue per day in one currency, with its 7-day moving average, as SVG."""
    chart = pygal.Line(
        **COMMON,
        # Opacity is the area under the daily line.
        style=Style(**STYLE, opacity=".15", opacity_hover=".2"),
        x_label_rotation=35 if len(items) > ROTATE_AFTER else 0,
        show_minor_x_labels=False,
        x_labels_major_count=MAX_X_LABELS,
        value_formatter=lambda v: f"{v:,.0f}",
        y_title=currency.value,
        include_x_axis=True,
        no_data_text="No orders in this period",
    )
    chart.x_labels = [item.date.isoformat() for item in items]
    if currency is Currency.BRL:
        daily = [float(Decimal(i.revenue_brl)) for i in items]
        average = [float(Decimal(i.revenue_brl_7d_avg)) for i in items]
    else:
        daily = [float(Decimal(i.revenue_usd)) for i in items]
        average = moving_average(daily)
    if items:
        chart.add(
            f"Daily revenue ({currency.value})",
            daily,
            fill=True,
            dots_size=3,
            show_dots=len(items) <= MAX_DOTS,
        )
        chart.add(
            f"{WINDOW}-day average",
            average,
            show_dots=False,
            stroke_style={"width": 3, "dasharray": "8, 5"},
        )
    return _render(chart)


def top_categories(categories: Sequence[CategoryUnits]) -> bytes:
    """Units sold in the top categories, the first on top, as SVG."""
    chart = pygal.HorizontalBar(
        **{**COMMON, "height": 220, "show_legend": False, "print_values": True},
        style=Style(**STYLE, opacity=".9", opacity_hover="1"),
        value_formatter=lambda v: f"{v:,.0f}",
        x_title="Units sold",
        no_data_text="No orders in this period",
    )
    # pygal draws the first label at the bottom.
    ranked = list(reversed(categories))
    chart.x_labels = [c.category for c in ranked]
    if ranked:
        chart.add("Units", [c.quantity for c in ranked])
    return _render(chart)


def _render(chart: Any) -> bytes:
    """The chart's SVG without the script pygal always adds (an image needs none), the
    same bytes for the same data."""
    root: ET.Element = chart.render_tree()
    for parent in list(root.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    svg: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    # pygal names each drawing with a random uuid (in its id and its CSS); each chart is
    # a document of its own, so a fixed name will do: the same data draws the same bytes.
    return svg.replace(chart.uuid.encode(), b"orderlens")
