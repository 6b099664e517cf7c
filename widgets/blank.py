"""Containers Textual need not draw, except where colour must be stripped."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.app import App


class BlankBacked:
    """For a container its children cover: Textual draws no lines of its own for it (`BLANK`).

    At every refresh Textual redraws each widget under the changed cells whole, and the
    full-height containers were a third of those lines. Under NO_COLOR it draws them after
    all: Textual fills a blank widget with its background colour without passing it through
    the app's line filters, so the colour-stripping filter would never see those cells (the
    first frame, before the panes mount, is all container).

    A plain mixin, listed before the Textual class: Textual takes a widget's default CSS from
    its first widget base only."""

    app: App[object]

    @property
    def BLANK(self) -> bool:  # type: ignore[override]  # noqa: N802 - Textual's name
        return not self.app.no_color
