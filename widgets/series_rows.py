"""Lines of text with a sparkline each, drawn line by line: the body of most panes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from probes.units import nice_ceiling
from widgets.text_line import text_strip

BARS = "▁▂▃▄▅▆▇█"
SPARK_MIN, SPARK_MAX = 6, 60  # sparkline width range in cells
SPARK_HISTORY = 80  # readings a sparkline spreads over its width


def bars(values: Sequence[float], width: int, top: float | None = None) -> str:
    """A sparkline of `width` cells at most, scaled from 0 to `top` (default: the readings'
    max). Never from the readings' min: 30 ms jittering to 40 ms must stay low bars, not look
    like a spike; the pane states the scale (`Pane.scale`) and gives it a floor.

    With more readings than cells, each bar shows the worst (max) of its bucket, as
    Textual's Sparkline does."""
    data = list(values)
    if width <= 0 or not data:
        return ""
    if len(data) > width:
        step = len(data) / width
        data = [max(data[int(i * step) : max(int(i * step) + 1, int((i + 1) * step))]) for i in range(width)]
    high = top if top is not None else max(data)
    if high <= 0:
        return BARS[0] * len(data)
    return "".join(BARS[max(0, min(7, int(v / high * 7.999)))] for v in data)


def scale_top(values: Iterable[float], floor: float, unit: float = 1.0) -> float:
    """A sparkline scale: the largest reading or `floor`, whichever is higher, rounded up to
    1, 2 or 5 x 10^k of `unit` (so the stated scale reads well and rarely changes)."""
    high = max([floor, *values])
    return nice_ceiling(high / unit) * unit


class SeriesRows(Widget):
    """Lines of text, each with a sparkline of its recent history on the right.

    One widget for all the lines of a pane, not a label and a sparkline per line: every
    widget on screen costs time at each redraw, changed or not, and a pane may list a dozen
    queues whose ages tick every second anyway. Drawn line by line (Textual's line API): a
    new reading repaints only the lines whose text or sparkline changed, and a line that
    reads as before reuses its rendered strip."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"series-rows--bars"}
    # Lines are drawn one at a time, so Textual's in-app text selection (which needs every
    # line's offsets) is off here; the terminal's own selection (Shift+drag) still copies.
    ALLOW_SELECT = False
    DEFAULT_CSS = """
    SeriesRows { height: auto; width: 1fr; }
    SeriesRows > .series-rows--bars { color: $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[tuple[Text, tuple[float, ...], float | None]] = []
        self._shown: list[tuple[Text, str]] = []  # what each line showed: text, sparkline
        self._label_width: int | None = None
        self._spark_width = SPARK_MAX  # cells the sparklines had at the last render
        self._strips: dict[int, tuple[tuple[object, ...], Strip]] = {}  # y -> (line, its strip)

    def show(self, lines: Sequence[tuple[Text, Sequence[float], float | None]], label_width: int | None = None) -> None:
        """Set the lines (text, history, scale top); `label_width` aligns their sparklines."""
        tails = [(text, tuple(values[-SPARK_HISTORY:]), top) for text, values, top in lines]
        shown = [(text, bars(tail, self._spark_width, top)) for text, tail, top in tails]
        if shown == self._shown and label_width == self._label_width:
            return
        before, relabel = self._shown, label_width != self._label_width
        self._lines, self._shown, self._label_width = tails, shown, label_width
        if len(shown) != len(before):
            self._strips = {y: cached for y, cached in self._strips.items() if y < len(shown)}
            self.refresh(layout=True)
        elif relabel or not self.size.width:
            self.refresh()
        else:
            # Same lines, some changed: repaint those only (same size, no layout pass).
            width = self.size.width
            self.refresh(*(Region(0, y, width, 1) for y, (now, was) in enumerate(zip(shown, before, strict=True)) if now != was))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        style = self.visual_style
        if y >= len(self._lines):
            return Strip.blank(width, style.rich_style)
        text, values, top = self._lines[y]
        spark = ""
        if self._label_width is not None and values:
            label_width = max(0, min(self._label_width, width - SPARK_MIN - 1))
            self._spark_width = max(0, min(SPARK_MAX, width - label_width - 1))
            spark = bars(values, self._spark_width, top)
        bars_style = self.get_component_rich_style("series-rows--bars")
        key = (width, self._label_width, text.plain, tuple(text.spans), text.style, spark, style, bars_style)
        cached = self._strips.get(y)
        if cached is not None and cached[0] == key:
            return cached[1]
        strip = self._render_text(text, spark, width, bars_style)
        self._strips[y] = (key, strip)
        return strip

    def _render_text(self, text: Text, spark: str, width: int, bars_style: Style) -> Strip:
        line = text.copy()
        if not spark:
            line.truncate(width, overflow="ellipsis")
        else:
            label_width = max(0, min(self._label_width or 0, width - SPARK_MIN - 1))
            line.truncate(label_width, overflow="ellipsis", pad=True)
            line.append(" ")
            line.append(spark, style=bars_style)
        return text_strip(self, line)
