"""The SimVP model configuration: one frozen, validated dataclass.

Symbols of the papers are given once here: hid_S = ``spatial_hidden``, hid_T = ``temporal_hidden``,
N_S = ``spatial_layers``, N_T = ``temporal_layers``, T_in/T_out = ``in_frames``/``out_frames``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from simvp_model.spatial import SPATIAL
from simvp_model.translators import TRANSLATORS

BASES = ("none", "persistence", "extrapolation", "climatology", "anomaly_persistence")
"""Base nowcasts a SimVP can correct (``"none"`` = the paper's SimVP predicting frames)."""


@dataclass(frozen=True)
class SimVPConfig:
    """Architecture of one SimVP network (no training settings, no run state).

    Parameters
    ----------
    in_frames, out_frames : int
        T_in input frames and T_out predicted frames. The network maps T_in → T_in frames; other
        T_out are reached by roll-out (spec §1.1).
    channels, height, width : int
        Frame shape C × H × W. H and W must be divisible by ``2 ** (spatial_layers // 2)``.
    spatial : {"v1", "openstl"}
        Encoder/decoder variant (spec §1.2 / §1.3).
    translator : {"incepu", "gsta", "tau"}
        Temporal module (spec §1.4–1.6).
    spatial_hidden : int
        hid_S, channels of every encoder/decoder layer (even: GroupNorm(2)).
    temporal_hidden : int
        hid_T, width of the translator.
    spatial_layers : int
        N_S, encoder (and decoder) layers; one stride-2 layer per pair. Even for ``"openstl"``.
    temporal_layers : int
        N_T (≥ 2): MetaFormer blocks (gsta/tau) or encoder blocks of the Inception U-Net (incepu).
    spatial_kernel : int
        Odd kernel size of the encoder/decoder convolutions (``spatio_kernel_enc/dec``).
    mlp_ratio : float
        MLP expansion of gsta/tau blocks (8 in every published config).
    drop, drop_path : float
        Dropout inside the MLP, and the maximum stochastic-depth rate (gsta/tau).
    inception_kernels : tuple of int
        Branch kernels of the Inception blocks (incepu).
    groups : int
        Groups of the Inception branch convolutions and GroupNorms (incepu). Must divide
        ``temporal_hidden // 2``, ``temporal_hidden`` and ``in_frames * spatial_hidden``.
    tau_alpha, tau_temperature : float
        Weight α and softmax temperature τ of TAU's differential divergence regulariser (used by
        :func:`simvp_model.losses.simvp_loss` only for translators whose objective includes it).
    base : {"none", "persistence", "extrapolation", "climatology", "anomaly_persistence"}
        ``"none"``: the paper's SimVP. Otherwise the network is a learned, zero-initialised
        correction to that base nowcast (:class:`simvp_model.corrected.CorrectedSimVP`); the
        base frames themselves are computed in the data path (``pipelines.method.base_nowcasts``).
    """

    in_frames: int = 10
    out_frames: int = 10
    channels: int = 1
    height: int = 64
    width: int = 64
    spatial: str = "openstl"
    translator: str = "gsta"
    spatial_hidden: int = 64
    temporal_hidden: int = 512
    spatial_layers: int = 4
    temporal_layers: int = 8
    spatial_kernel: int = 3
    mlp_ratio: float = 8.0
    drop: float = 0.0
    drop_path: float = 0.0
    inception_kernels: tuple[int, ...] = field(default=(3, 5, 7, 11))
    groups: int = 8
    tau_alpha: float = 0.1
    tau_temperature: float = 0.1
    base: str = "none"

    def __post_init__(self) -> None:
        # tuples survive YAML/JSON as lists: normalise the one sequence field (not a fix-up of a
        # wrong value, only of its container type)
        object.__setattr__(self, "inception_kernels", tuple(self.inception_kernels))
        for name in (
            "in_frames",
            "out_frames",
            "channels",
            "height",
            "width",
            "spatial_hidden",
            "temporal_hidden",
            "spatial_layers",
            "temporal_layers",
            "spatial_kernel",
            "groups",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        for name in ("mlp_ratio", "tau_temperature"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name}={value!r} must be a positive number")
        if not isinstance(self.tau_alpha, int | float) or not self.tau_alpha >= 0:
            raise ValueError(f"tau_alpha={self.tau_alpha!r} must be >= 0")
        for name in ("drop", "drop_path"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name}={value!r} must be in [0, 1)")
        if self.base not in BASES:
            raise ValueError(f"base={self.base!r} is unknown; valid: {list(BASES)}")
        if self.spatial not in SPATIAL:
            raise ValueError(f"spatial={self.spatial!r} is unknown; valid: {SPATIAL.names()}")
        if self.translator not in TRANSLATORS:
            raise ValueError(
                f"translator={self.translator!r} is unknown; valid: {TRANSLATORS.names()}"
            )
        factor = 2**self.downsampling_layers
        for name in ("height", "width"):
            value = getattr(self, name)
            if value % factor:
                raise ValueError(
                    f"{name}={value} must be divisible by 2**(spatial_layers // 2) = {factor} "
                    f"(spatial_layers={self.spatial_layers})"
                )
        SPATIAL.get(self.spatial).validate(self)
        TRANSLATORS.get(self.translator).validate(self)

    @property
    def downsampling_layers(self) -> int:
        """Number of stride-2 encoder layers (``spatial_layers // 2``)."""
        return SPATIAL.get(self.spatial).downsampling_layers(self.spatial_layers)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """Translator input/output shape ``(T_in * hid_S, H', W')`` for one sample."""
        f = 2**self.downsampling_layers
        return (self.in_frames * self.spatial_hidden, self.height // f, self.width // f)

    def replace(self, **changes: Any) -> SimVPConfig:
        """Return a validated copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-serialisable dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["inception_kernels"] = list(self.inception_kernels)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimVPConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown SimVPConfig keys {unknown}; valid: {sorted(known)}")
        return cls(**data)
