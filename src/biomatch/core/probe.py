"""What a probe (or an enrolment) is made of: captures, each for one plug-in."""

from __future__ import annotations

from dataclasses import dataclass

from biomatch.errors import InvalidRequest


def check_split_request(layout: str | None, hand: str | None) -> None:
    """A hand names the hand of a split capture: without a layout it would be ignored, and a
    photo of four fingers taken as one fingertip, so the request is refused."""
    if hand is not None and layout is None:
        raise InvalidRequest(
            "hand is for a split capture: add layout=four_finger, or leave hand out for one "
            "fingertip.",
            hand=hand,
        )


@dataclass(frozen=True)
class ProbeItem:
    """One capture of a probe. ``plugin`` names the plug-in to use (default: the one named
    after the modality); ``position`` is a finger position code (0: unknown). A capture
    with a ``layout`` (``four_finger``, with its ``hand``) is split into one item per finger
    before extraction; ``region`` is then where each lies in the capture and ``split_of``
    the number (0-based) of that capture in the probe."""

    modality: str
    image: bytes
    position: int = 0
    plugin: str | None = None
    primary_only: bool = False
    layout: str | None = None
    hand: str | None = None
    region: tuple[int, int, int, int] | None = None
    split_of: int | None = None

    def __post_init__(self) -> None:
        check_split_request(self.layout, self.hand)
