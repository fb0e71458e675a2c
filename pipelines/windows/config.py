"""Window, split and cache configuration of the training windows (frozen, validated).

See :mod:`pipelines.windows` for the contract. :class:`~pipelines.prepare.SpatialConfig` (crop,
coarsening, tiles) lives in :mod:`pipelines.prepare`, which forecasting and evaluation share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipelines.prepare import SpatialConfig

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "SCAN_BLOCK_FRAMES",
    "SPLITS",
    "TEST",
    "TRAIN",
    "UNUSED",
    "VAL",
    "SpatialConfig",
    "SplitConfig",
    "WindowConfig",
]

SPLITS: tuple[str, str, str] = ("train", "val", "test")
TRAIN, VAL, TEST, UNUSED = 0, 1, 2, -1
# Frames read per block while scanning a store (rounded up to whole time chunks): bounded
# memory (block x C x H x W floats).
SCAN_BLOCK_FRAMES = 32
# Per-process cache of prepared (cropped, coarsened) time-chunk blocks of ZarrWindows: a window
# overlaps the next one by all but one frame, and decompressing a chunk costs the same whether
# one or all of its frames are used. 64 MiB keeps memory bounded however large the store is.
DEFAULT_CACHE_BYTES = 64 * 2**20


# ---------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class WindowConfig:
    """Length of one sample in frames.

    Parameters
    ----------
    in_frames : int
        ``T_in``, input frames.
    out_frames : int
        ``T_out``, target frames.
    stride : int
        Step in frames between consecutive window starts (1 = every start).
    """

    in_frames: int
    out_frames: int
    stride: int = 1

    def __post_init__(self) -> None:
        for name in ("in_frames", "out_frames", "stride"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @property
    def length(self) -> int:
        """``T_in + T_out``, the frames one window spans."""
        return self.in_frames + self.out_frames


@dataclass(frozen=True)
class SplitConfig:
    """How the frames of each store are split into train / val / test.

    Parameters
    ----------
    fractions : tuple of 3 float
        Shares of the valid frames for train, val, test (sum 1; val/test may be 0).
    gap : int or None
        Time steps that must lie strictly between two splits; None = the window length.
    by : {"time", "event"}
        ``"time"``: chronological cut of the valid frames; ``"event"``: whole contiguous segments
        go to one split each (needs at least one segment per non-empty split).
    scope : {"store", "all"}
        ``"store"``: each store is split on its own (every store contributes to every split);
        ``"all"``: the valid frames of all stores are put on one time line (same time step
        required) and cut once, so e.g. the latest events of all stores form the test split.
    holdout : tuple of (int, str, str)
        Held-out periods ``(store position, first time, last time)`` (ISO 8601, inclusive):
        when given, the test split is exactly their valid frames (cross-validation folds), and
        train / val are cut chronologically from the other valid frames of all stores on one
        time line by ``fractions[:2]`` (``fractions[2]`` must be 0); training frames of the
        same store within ``gap`` steps of a held-out period are not used.
    """

    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    gap: int | None = None
    by: Literal["time", "event"] = "time"
    scope: Literal["store", "all"] = "store"
    holdout: tuple[tuple[int, str, str], ...] = ()

    def __post_init__(self) -> None:
        fr = tuple(float(f) for f in self.fractions)
        if (
            len(fr) != 3
            or min(fr) < 0
            or fr[0] <= 0
            or not math.isclose(sum(fr), 1.0, abs_tol=1e-6)
        ):
            raise ValueError(
                "fractions must be 3 non-negative shares summing to 1 with train > 0, "
                f"got {self.fractions!r}"
            )
        object.__setattr__(self, "fractions", fr)
        if self.gap is not None and (not isinstance(self.gap, int | np.integer) or self.gap < 0):
            raise ValueError(f"gap must be a non-negative integer or None, got {self.gap!r}")
        if self.by not in ("time", "event"):
            raise ValueError(f"by must be 'time' or 'event', got {self.by!r}")
        if self.scope not in ("store", "all"):
            raise ValueError(f"scope must be 'store' or 'all', got {self.scope!r}")
        holdout = tuple(tuple(h) for h in self.holdout)
        for entry in holdout:
            if (
                len(entry) != 3
                or isinstance(entry[0], bool)
                or not isinstance(entry[0], int | np.integer)
                or entry[0] < 0
                or pd.Timestamp(entry[1]) > pd.Timestamp(entry[2])
            ):
                raise ValueError(
                    f"holdout entries are (store position, first time, last time), got {entry!r}"
                )
        if holdout and (fr[2] != 0 or self.by != "time"):
            raise ValueError(
                f"with holdout periods the test split is the held-out frames: fractions[2] must "
                f"be 0 and by='time', got fractions={fr} by={self.by!r}"
            )
        object.__setattr__(self, "holdout", tuple((int(a), str(b), str(c)) for a, b, c in holdout))

    def gap_for(self, window: WindowConfig) -> int:
        """The gap in time steps for ``window`` (default: its length)."""
        return window.length if self.gap is None else int(self.gap)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> SplitConfig:
        """The split recorded in a checkpoint's ``metadata["split"]`` (missing keys: defaults)."""
        values = values or {}
        default = cls()
        return cls(
            tuple(values.get("fractions", default.fractions)),  # type: ignore[arg-type]
            values.get("gap", default.gap),
            values.get("by", default.by),
            values.get("scope", default.scope),
            tuple(tuple(h) for h in values.get("holdout") or ()),  # type: ignore[misc]
        )

    def to_dict(self, window: WindowConfig) -> dict[str, Any]:
        """Plain form for checkpoint metadata (the gap resolved for ``window``)."""
        return {
            "fractions": list(self.fractions),
            "gap": self.gap_for(window),
            "by": self.by,
            "scope": self.scope,
            "holdout": [list(h) for h in self.holdout],
        }
