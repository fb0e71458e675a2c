"""Normalisation between physical units and the units the network sees.

Every checkpoint stores one :class:`Normalisation`, so predictions come back in physical
units. Encoding is a registered element-wise *transform* followed by a per-channel affine
map ``(x - offset) / scale``; decoding is the exact inverse.

Transform contract (registry :data:`TRANSFORMS`): each transform takes an array or tensor
of any shape in physical units and returns one of the same shape, type and dtype; NaN stays
NaN. ``threshold`` is the transform's only parameter (``None`` when unused).

- ``identity``: no change (fields already O(1), e.g. Moving MNIST intensities in [0, 1]).
- ``log1p``: ``log(1 + x)`` for counts (crowd flows); inverse ``expm1``.
- ``dbr``: rain rate R [mm/h] to ``10·log10(max(R, threshold))`` [dBR]; the inverse maps
  values at or below ``10·log10(threshold)`` (within :data:`DBR_ROUNDOFF_DB`) back to 0 mm/h
  (no rain), others to ``10**(dBR/10)``.

Arrays are ``(..., C, H, W)``: the channel axis is the third from last, so the same object
works on ``(T, C, H, W)`` and ``(B, T, C, H, W)`` numpy arrays and torch tensors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from simvp_model.registry import Registry

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

CHANNEL_AXIS = -3  # (..., C, H, W)
# dBR tolerance of "at the threshold" in the inverse: float32 round-off of the affine map is
# ~1e-5 dB; 1e-3 dB is a 0.02 % rain-rate difference.
DBR_ROUNDOFF_DB = 1e-3


class Transform(Protocol):
    """An invertible element-wise map from physical units to transformed units."""

    def forward(self, x: ArrayT, threshold: float | None) -> ArrayT: ...

    def inverse(self, y: ArrayT, threshold: float | None) -> ArrayT: ...

    def check_threshold(self, threshold: float | None) -> None: ...


TRANSFORMS: Registry[Transform] = Registry("normalisation transform")


def _is_torch(x: object) -> bool:
    return isinstance(x, torch.Tensor)


class _Identity:
    def forward(self, x: ArrayT, threshold: float | None) -> ArrayT:
        return x

    def inverse(self, y: ArrayT, threshold: float | None) -> ArrayT:
        return y

    def check_threshold(self, threshold: float | None) -> None:
        if threshold is not None:
            raise ValueError(f"transform 'identity' takes no threshold, got {threshold=}")


class _Log1p:
    def forward(self, x: ArrayT, threshold: float | None) -> ArrayT:
        return torch.log1p(x) if _is_torch(x) else np.log1p(x)

    def inverse(self, y: ArrayT, threshold: float | None) -> ArrayT:
        return torch.expm1(y) if _is_torch(y) else np.expm1(y)

    def check_threshold(self, threshold: float | None) -> None:
        if threshold is not None:
            raise ValueError(f"transform 'log1p' takes no threshold, got {threshold=}")


class _DBR:
    def forward(self, x: ArrayT, threshold: float | None) -> ArrayT:
        self.check_threshold(threshold)
        if _is_torch(x):
            floor = torch.as_tensor(threshold, dtype=x.dtype, device=x.device)
            return 10.0 * torch.log10(torch.maximum(x, floor))  # maximum keeps NaN
        return (10.0 * np.log10(np.maximum(x, np.asarray(threshold, dtype=x.dtype)))).astype(
            x.dtype, copy=False
        )

    def inverse(self, y: ArrayT, threshold: float | None) -> ArrayT:
        self.check_threshold(threshold)
        # values within float32 round-off of the floor (after the affine map) count as "at" it
        floor_db = 10.0 * math.log10(threshold) + DBR_ROUNDOFF_DB  # type: ignore[arg-type]
        if _is_torch(y):
            rate = torch.pow(torch.as_tensor(10.0, dtype=y.dtype, device=y.device), y / 10.0)
            return torch.where(y <= floor_db, torch.zeros_like(y), rate)
        rate = np.power(np.asarray(10.0, dtype=y.dtype), y / 10.0)
        return np.where(y <= floor_db, np.zeros_like(y), rate).astype(y.dtype, copy=False)

    def check_threshold(self, threshold: float | None) -> None:
        if threshold is None or not math.isfinite(threshold) or threshold <= 0:
            raise ValueError(f"transform 'dbr' needs a finite threshold > 0 mm/h, got {threshold=}")


TRANSFORMS.add("identity", _Identity())
TRANSFORMS.add("log1p", _Log1p())
TRANSFORMS.add("dbr", _DBR())


@dataclass(frozen=True)
class Normalisation:
    """Transform then per-channel affine map: ``(transform(x) - offset) / scale``.

    Parameters
    ----------
    transform : str
        Name in :data:`TRANSFORMS` (``identity``, ``log1p``, ``dbr``).
    offset, scale : tuple of float
        Per-channel offset and scale (length C), in transformed units; scale > 0.
    threshold : float or None
        Transform parameter (``dbr``: rain-rate floor in mm/h); ``None`` otherwise.
    """

    transform: str = "identity"
    offset: tuple[float, ...] = (0.0,)
    scale: tuple[float, ...] = (1.0,)
    threshold: float | None = None

    def __post_init__(self) -> None:
        TRANSFORMS.get(self.transform).check_threshold(self.threshold)
        object.__setattr__(self, "offset", tuple(float(v) for v in self.offset))
        object.__setattr__(self, "scale", tuple(float(v) for v in self.scale))
        if self.threshold is not None:
            object.__setattr__(self, "threshold", float(self.threshold))
        if len(self.offset) == 0 or len(self.offset) != len(self.scale):
            raise ValueError(
                f"offset and scale need one value per channel, got {self.offset=} {self.scale=}"
            )
        if not all(math.isfinite(v) for v in self.offset):
            raise ValueError(f"offset must be finite, got {self.offset=}")
        if not all(math.isfinite(v) and v > 0 for v in self.scale):
            raise ValueError(f"scale must be finite and > 0, got {self.scale=}")

    @classmethod
    def identity(cls, channels: int = 1) -> Normalisation:
        """No-op normalisation for ``channels`` channels."""
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels=}")
        return cls("identity", (0.0,) * channels, (1.0,) * channels, None)

    @property
    def channels(self) -> int:
        """Number of channels C this normalisation applies to."""
        return len(self.offset)

    def _affine(self, x: ArrayT) -> tuple[Any, Any]:
        if x.ndim < 3 or x.shape[CHANNEL_AXIS] != self.channels:
            raise ValueError(f"expected (..., C={self.channels}, H, W), got shape {tuple(x.shape)}")
        shape = (self.channels, 1, 1)  # broadcast over (..., C, H, W)
        if _is_torch(x):
            dtype = x.dtype if x.is_floating_point() else torch.float32
            kw = {"dtype": dtype, "device": x.device}
            return (
                torch.tensor(self.offset, **kw).reshape(shape),
                torch.tensor(self.scale, **kw).reshape(shape),
            )
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        return (
            np.asarray(self.offset, dtype=dtype).reshape(shape),
            np.asarray(self.scale, dtype=dtype).reshape(shape),
        )

    def encode(self, x: ArrayT) -> ArrayT:
        """Physical units ``(..., C, H, W)`` → normalised units (same shape and type)."""
        offset, scale = self._affine(x)
        x = _as_float(x)
        return (TRANSFORMS.get(self.transform).forward(x, self.threshold) - offset) / scale

    def decode(self, z: ArrayT) -> ArrayT:
        """Normalised units ``(..., C, H, W)`` → physical units (inverse of :meth:`encode`)."""
        offset, scale = self._affine(z)
        z = _as_float(z)
        return TRANSFORMS.get(self.transform).inverse(z * scale + offset, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` (str/float/list) for checkpoints and JSON."""
        return {
            "transform": self.transform,
            "offset": list(self.offset),
            "scale": list(self.scale),
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalisation:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        unknown = set(data) - {"transform", "offset", "scale", "threshold"}
        if unknown:
            raise ValueError(f"unknown normalisation keys {sorted(unknown)}")
        return cls(
            transform=data.get("transform", "identity"),
            offset=tuple(data.get("offset", (0.0,))),
            scale=tuple(data.get("scale", (1.0,))),
            threshold=data.get("threshold"),
        )


def _as_float(x: ArrayT) -> ArrayT:
    if _is_torch(x):
        return x if x.is_floating_point() else x.float()
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)


def fit_from(
    array: np.ndarray | torch.Tensor,
    transform: str = "identity",
    threshold: float | None = None,
    channel_axis: int = CHANNEL_AXIS,
) -> Normalisation:
    """Per-channel mean/std of the transformed training data (NaN-aware).

    Parameters
    ----------
    array : numpy.ndarray or torch.Tensor
        Training data in physical units with a channel axis, e.g. ``(N, C, H, W)`` or
        ``(B, T, C, H, W)``; NaN marks missing values and is ignored.
    transform : str
        Name in :data:`TRANSFORMS`.
    threshold : float or None
        Transform parameter (``dbr``: mm/h floor).
    channel_axis : int
        Axis holding the channels (default the third from last).

    Returns
    -------
    Normalisation
        ``offset`` = channel mean, ``scale`` = channel standard deviation, both computed in
        float64 on the transformed values.

    Raises
    ------
    ValueError
        If a channel has no finite value or zero spread (it cannot be scaled).
    """
    data = array.detach().cpu().numpy() if _is_torch(array) else np.asarray(array)
    TRANSFORMS.get(transform).check_threshold(threshold)
    moved = np.moveaxis(data, channel_axis, 0)
    offsets: list[float] = []
    scales: list[float] = []
    for c, channel in enumerate(moved):
        values = TRANSFORMS.get(transform).forward(channel.astype(np.float64), threshold)
        finite = np.isfinite(values)
        if not finite.any():
            raise ValueError(f"channel {c} has no finite value (shape {channel.shape})")
        mean = float(values[finite].mean())
        std = float(values[finite].std())
        if not std > 0:
            raise ValueError(f"channel {c} is constant ({mean=}) and cannot be scaled")
        offsets.append(mean)
        scales.append(std)
    return Normalisation(transform, tuple(offsets), tuple(scales), threshold)


def stack_channels(values: Sequence[Normalisation]) -> Normalisation:
    """Concatenate single-transform normalisations along the channel axis.

    All parts must share ``transform`` and ``threshold``; raises ``ValueError`` otherwise.
    """
    if not values:
        raise ValueError("need at least one normalisation to stack")
    first = values[0]
    for other in values[1:]:
        if (other.transform, other.threshold) != (first.transform, first.threshold):
            raise ValueError(
                f"cannot stack {first.transform}/{first.threshold} with "
                f"{other.transform}/{other.threshold}"
            )
    return Normalisation(
        first.transform,
        tuple(v for n in values for v in n.offset),
        tuple(v for n in values for v in n.scale),
        first.threshold,
    )
