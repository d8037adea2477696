"""The paper's unlock modes, as numbers of upper blocks (no torch here: configs import it)."""

from __future__ import annotations

from dataclasses import dataclass

ALL_BLOCKS = -1  # every block of a tower


@dataclass(frozen=True)
class Unlock:
    """What trains: the last `vision_blocks` / `text_blocks` of each tower (ALL_BLOCKS for all,
    0 for none) with the tower's final norm (and the text projection), or everything."""

    vision_blocks: int
    text_blocks: int
    everything: bool = False


# The paper's unlock modes as numbers of upper blocks, so that a mode means the same on any
# backbone depth (the paper: last 3 of 24 vision blocks, last 2 of 12 text blocks).
UNLOCK_MODES: dict[str, Unlock] = {
    "all": Unlock(ALL_BLOCKS, ALL_BLOCKS, everything=True),
    "visual": Unlock(ALL_BLOCKS, 0),
    "visual_upper_layers": Unlock(3, 0),
    "visual_upper_layers_textual_upper_layers": Unlock(3, 2),
    "visual_upper_layers_textual_upper_layers_deeper": Unlock(4, 3),
    "visual_last_layer": Unlock(1, 0),
}
