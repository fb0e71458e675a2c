"""Rotations/flips keep a window's inputs, base and targets aligned."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.windows.augment import Symmetry, augment, random_symmetry


def _blob(y: float, x: float, n: int = 16) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n]
    return np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 2.0)


def _peak(frame: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(np.argmax(frame), frame.shape))


def test_moving_blob_lands_where_the_symmetry_sends_it() -> None:
    # a blob moving one pixel per frame to the right (+x) at row 4: inputs x = 2..4, base (an
    # extrapolation) and target x = 5..7
    inputs = np.stack([_blob(4, x) for x in (2, 3, 4)])[:, None]  # (T, C, H, W)
    base = np.stack([_blob(4, x) for x in (5, 6, 7)])[:, None]
    target = base.copy()
    # one quarter turn counter-clockwise: (y, x) -> (n-1-x, y); motion +x becomes -y (upwards)
    x, b, t = (Symmetry(1).apply(a) for a in (inputs, base, target))
    assert [_peak(f[0]) for f in x] == [(13, 4), (12, 4), (11, 4)]
    assert [_peak(f[0]) for f in b] == [(10, 4), (9, 4), (8, 4)]
    assert np.array_equal(b, t)
    # a flip after the turn mirrors x: (y, x) -> (y, n-1-x)
    x = Symmetry(1, flip=True).apply(inputs)
    assert [_peak(f[0]) for f in x] == [(13, 11), (12, 11), (11, 11)]


def test_random_augment_applies_one_symmetry_to_all() -> None:
    rng = np.random.default_rng(0)
    frames = np.random.default_rng(1).random((7, 1, 8, 8))
    seen = set()
    for _ in range(40):
        x, y = augment([frames[:3], frames[3:]], rng)
        joined = np.concatenate([x, y])
        matches = [
            s
            for s in (Symmetry(k, f) for k in range(4) for f in (False, True))
            if np.array_equal(s.apply(frames), joined)
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 8  # every symmetry of the square is drawn


def test_rectangles_keep_their_shape_and_mismatches_are_refused() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert random_symmetry(rng, square=False).quarter_turns in (0, 2)
        (out,) = augment([np.zeros((2, 1, 4, 6))], rng)
        assert out.shape == (2, 1, 4, 6)
    with pytest.raises(ValueError, match="one \\(H, W\\)"):
        augment([np.zeros((1, 4, 4)), np.zeros((1, 4, 6))], rng)
    with pytest.raises(ValueError, match="square"):
        Symmetry(1).apply(np.zeros((1, 4, 6)))
    with pytest.raises(ValueError, match="quarter_turns=4"):
        Symmetry(4)
