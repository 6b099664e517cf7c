"""One line of text drawn straight to segments, and the conversion the line-drawn widgets share."""

from __future__ import annotations

from rich.text import Text
from textual.content import Content
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget


def text_strip(widget: Widget, text: Text) -> Strip:
    """`text` as a Label would colour it on `widget`, without wrapping or selection offsets.

    A Label's way (wrap, align, a selection offset in every segment's style) costs three
    times as much, and these lines are redrawn every refresh."""
    content = Content.from_rich_text(text, console=widget.app.console)
    return Strip(content.render_segments(widget.visual_style), content.cell_length)


class TextLine(Widget):
    """A one-line label for text that changes every refresh (the header's clock, its counts).

    `update` with the same text does nothing; a new text of the same width repaints this line
    only, without a layout pass. Wider than its room, the text ends in an ellipsis."""

    ALLOW_SELECT = False  # drawn without the offsets Textual's text selection needs
    DEFAULT_CSS = "TextLine { width: auto; height: 1; }"

    def __init__(self, text: Text, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = text
        self._strip: tuple[tuple[object, ...], Strip] | None = None

    @property
    def text(self) -> Text:
        return self._text

    def update(self, text: Text) -> None:
        if text == self._text:
            return
        resized = text.cell_len != self._text.cell_len
        self._text = text
        self.refresh(layout=resized)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self._text.cell_len

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 1

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y > 0:
            return Strip.blank(width, self.visual_style.rich_style)
        key = (width, self._text.plain, tuple(self._text.spans), self._text.style, self.visual_style)
        if self._strip is None or self._strip[0] != key:
            text = self._text
            if text.cell_len > width:
                text = text.copy()
                text.truncate(width, overflow="ellipsis")
            self._strip = (key, text_strip(self, text))
        return self._strip[1]
