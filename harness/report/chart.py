"""Geometry of the inline SVG charts (stacked bars of outcomes); the template only draws it.

Computing the rectangles here keeps the template free of arithmetic and lets the layout be
unit-tested without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.report.model import OUTCOME_LABELS, OUTCOMES

LABEL_WIDTH = 300
BAR_WIDTH = 560
COUNT_WIDTH = 50
ROW_HEIGHT = 26
BAR_HEIGHT = 18
# Below this width a segment's number would not fit inside it; the <title> still tells it.
MIN_LABELLED_WIDTH = 18.0


@dataclass(frozen=True, slots=True)
class Segment:
    outcome: str
    count: int
    x: float
    width: float
    tooltip: str

    @property
    def labelled(self) -> bool:
        return self.width >= MIN_LABELLED_WIDTH

    @property
    def centre(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True, slots=True)
class Bar:
    key: str
    label: str
    total: int
    y: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class BarChart:
    bars: tuple[Bar, ...]
    width: int
    height: int
    label_width: int = LABEL_WIDTH
    bar_height: int = BAR_HEIGHT


def _segments(label: str, counts: Mapping[str, int], scale: float) -> tuple[Segment, ...]:
    x = float(LABEL_WIDTH)
    out: list[Segment] = []
    for outcome in OUTCOMES:
        count = counts.get(outcome, 0)
        if count <= 0:
            continue
        width = count * scale
        tooltip = f"{label}: {count} {OUTCOME_LABELS[outcome].lower()}"
        out.append(Segment(outcome, count, round(x, 2), round(width, 2), tooltip))
        x += width
    return tuple(out)


def stacked_bars(
    rows: Sequence[tuple[str, str, Mapping[str, int]]], *, scale_to: int | None = None
) -> BarChart:
    """One horizontal bar per (key, label, outcome counts) row, lengths to a common scale.

    The longest bar fills the width, or a bar of ``scale_to`` scenarios does when given (so
    that several charts can share one scale).
    """
    largest = max((sum(c.values()) for _, _, c in rows), default=0)
    if scale_to is not None:
        largest = max(largest, scale_to)
    scale = BAR_WIDTH / largest if largest else 0.0
    bars = tuple(
        Bar(
            key=key,
            label=label,
            total=sum(counts.values()),
            y=float(index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2),
            segments=_segments(label, counts, scale),
        )
        for index, (key, label, counts) in enumerate(rows)
    )
    return BarChart(
        bars=bars,
        width=LABEL_WIDTH + BAR_WIDTH + COUNT_WIDTH,
        height=max(len(rows), 1) * ROW_HEIGHT,
    )
