"""Random rotations and flips applied to a training window's arrays together.

Radar rain fields have no preferred direction at the scale of a crop, so each of the 8
symmetries of the square (the dihedral group: 4 rotations by 90°, each optionally mirrored) turns
one training window into 8. The same symmetry is applied to every array of one sample (inputs,
base nowcast, targets), so a rain cell keeps its place and motion across them. Fields tied to
places (a city's street grid, land and sea under a temperature field) are not augmented: the
kind's defaults decide (``pipelines.training.source``).

Contract: arrays are ``(..., H, W)`` (numpy); rotations by 90° and 270° need ``H == W`` and are
left out of the random draw otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SPATIAL_AXES = (-2, -1)


@dataclass(frozen=True)
class Symmetry:
    """One symmetry of the square: ``quarter_turns`` counter-clockwise, then a left-right flip.

    Parameters
    ----------
    quarter_turns : int
        0..3 rotations by 90° (``np.rot90`` on the last two axes: rows = y, columns = x).
    flip : bool
        Mirror along x (columns) after the rotation.
    """

    quarter_turns: int = 0
    flip: bool = False

    def __post_init__(self) -> None:
        if self.quarter_turns not in (0, 1, 2, 3):
            raise ValueError(f"quarter_turns={self.quarter_turns!r} must be 0, 1, 2 or 3")

    def apply(self, array: np.ndarray) -> np.ndarray:
        """The transformed ``(..., H, W)`` array (a contiguous copy)."""
        if self.quarter_turns % 2 and array.shape[-2] != array.shape[-1]:
            raise ValueError(f"a quarter turn needs square frames, got {array.shape[-2:]}")
        out = np.rot90(array, self.quarter_turns, axes=SPATIAL_AXES)
        if self.flip:
            out = out[..., ::-1]
        return np.ascontiguousarray(out)


def random_symmetry(rng: np.random.Generator, square: bool) -> Symmetry:
    """A uniformly drawn symmetry (of all 8 when ``square``, else of the 4 keeping the shape)."""
    turns = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
    return Symmetry(turns, bool(rng.integers(2)))


def augment(arrays: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Apply one random symmetry to all ``arrays`` (same ``(H, W)``), e.g. inputs, base, targets."""
    shapes = {a.shape[-2:] for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"arrays to augment together need one (H, W), got {sorted(shapes)}")
    ((h, w),) = shapes
    symmetry = random_symmetry(rng, square=h == w)
    return [symmetry.apply(a) for a in arrays]
