"""SimVP as a forecasting method: which checkpoint, how NaN inputs are filled, provenance.

Contract
--------
A :class:`SimVPMethod` wraps one loaded checkpoint (:class:`simvp_model.checkpoint.LoadedModel`)
and turns physical-unit input frames ``(T_in, C, H, W)`` (NaN = no data) into physical-unit
forecasts ``(L, C, H, W)``. Forecasting (:func:`pipelines.forecast.run.run_forecast`) and
verification (:func:`pipelines.evaluate.evaluate_source`) both use it, so the rules below hold
for both:

- **Default checkpoint**: the newest (by modification time) ``best.pt`` under
  ``DIR/models/<source>/``, searched recursively (:func:`default_checkpoint`); ``best.pt`` is the
  bundle :func:`simvp_model.lightning_module.fit` exports.
- **NaN fill**: pixels still NaN (or infinite) inside the input frames are set to what
  training used (:func:`pipelines.prepare.nan_fill_values`, shared with the training windows):
  the *physical zero* for ``dbr``/``log1p`` normalisations (no rain, no counts), the *training
  mean* for ``identity`` (temperature).
- **Base nowcast**: a corrected SimVP (``config.base != "none"``) gets its base from
  :func:`pipelines.bases.base_nowcast` on the *raw* input frames (NaN kept, as the training
  windows compute it), for every lead time; base pixels without a value are filled like the
  inputs. The input times are needed (and, for ``climatology``, the archive of past frames).
- **Provenance**: the checkpoint file's SHA-256 (:func:`file_sha256`) and the package version,
  architecture and base (:func:`model_version`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from data_catalog.paths import DataDir
from data_catalog.vocabulary import CHANNEL, X, Y
from pipelines.baselines import BaselineFn, as_forecast, time_step
from pipelines.bases import base_nowcast
from pipelines.prepare import Preparation, nan_fill_values
from simvp_model.checkpoint import LoadedModel, load_checkpoint
from simvp_model.normalisation import Normalisation
from simvp_model.predict import predict

__all__ = [
    "DEFAULT_CHECKPOINT_NAME",
    "Predictor",
    "SimVPMethod",
    "default_checkpoint",
    "file_sha256",
    "model_version",
    "nan_fill_values",
    "physical_fill",
]

DEFAULT_CHECKPOINT_NAME = "best.pt"

#: ``(loaded, frames (1, T_in, C, H, W), horizon[, base=(1, horizon, C, H, W)])`` ->
#: ``(1, horizon, C, H, W)``, physical units (``base`` is passed for corrected models only).
Predictor = Callable[[Any, np.ndarray, int], np.ndarray]


def default_checkpoint(source: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Newest ``best.pt`` (by modification time) under ``DIR/models/<source>/`` (recursive).

    Raises
    ------
    FileNotFoundError
        If there is none.
    """
    root = Path(DataDir.resolve(data_dir).models(source))
    found = (
        sorted(root.rglob(DEFAULT_CHECKPOINT_NAME), key=lambda p: p.stat().st_mtime)
        if root.is_dir()
        else []
    )
    if not found:
        raise FileNotFoundError(
            f"no {DEFAULT_CHECKPOINT_NAME} under {root}: train a model for {source!r} first "
            "(nowcast train) or pass a checkpoint"
        )
    return found[-1]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_version(loaded: Any) -> str:
    """Package version and architecture of a loaded model, for provenance."""
    try:
        package = importlib.metadata.version("simvp-nowcast")
    except importlib.metadata.PackageNotFoundError:
        package = "unknown"
    cfg = loaded.config
    arch = "/".join(str(getattr(cfg, a, "?")) for a in ("spatial", "translator"))
    return (
        f"simvp-nowcast {package}; SimVP {arch} T_in={getattr(cfg, 'in_frames', '?')} "
        f"T_out={getattr(cfg, 'out_frames', '?')} base={getattr(cfg, 'base', 'none')}"
    )


def physical_fill(normalisation: Normalisation) -> np.ndarray:
    """:func:`nan_fill_values` decoded to physical units: ``(C,)`` float32."""
    C = int(normalisation.channels)
    _, fill = nan_fill_values(normalisation)  # (C,) normalised
    decoded = normalisation.decode(np.asarray(fill, dtype=np.float32).reshape(1, C, 1, 1))
    return np.asarray(decoded, dtype=np.float32).reshape(C)


def _predict(
    loaded: Any, frames: np.ndarray, horizon: int, base: np.ndarray | None = None
) -> np.ndarray:
    return np.asarray(predict(loaded, frames, horizon=horizon, base=base))


@dataclass(frozen=True)
class SimVPMethod:
    """One loaded SimVP checkpoint used as a forecasting method.

    Parameters
    ----------
    loaded : simvp_model.checkpoint.LoadedModel
        The model, its configs, normalisation and ``metadata``.
    name : str
        Checkpoint path, or ``"<in-memory model>"``.
    sha256 : str
        SHA-256 of the checkpoint file; ``""`` when unknown (in-memory model).
    predictor : callable
        :data:`Predictor`; default :func:`simvp_model.predict.predict` (another one, e.g. a
        hand-computable stand-in, makes forecasts checkable without a network).
    """

    loaded: Any
    name: str = "<in-memory model>"
    sha256: str = ""
    predictor: Predictor = field(default=_predict, repr=False)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str]) -> SimVPMethod:
        """Load the bundle at ``path`` (``FileNotFoundError`` when there is none)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        return cls(load_checkpoint(path), str(path), file_sha256(path))

    @classmethod
    def from_loaded(
        cls, loaded: LoadedModel | Any, predictor: Predictor | None = None
    ) -> SimVPMethod:
        """Wrap an already loaded model (its ``path`` attribute names it when it has one)."""
        name = str(getattr(loaded, "path", "") or "<in-memory model>")
        sha = file_sha256(name) if Path(name).is_file() else ""
        return cls(loaded, name, sha, _predict if predictor is None else predictor)

    @classmethod
    def resolve(
        cls,
        source: str,
        checkpoint: str | os.PathLike[str] | LoadedModel | SimVPMethod | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> SimVPMethod:
        """A method from a path, a loaded model, a method, or None (:func:`default_checkpoint`)."""
        if isinstance(checkpoint, SimVPMethod):
            return checkpoint
        if checkpoint is None:
            return cls.from_checkpoint(default_checkpoint(source, data_dir))
        if isinstance(checkpoint, str | os.PathLike):
            return cls.from_checkpoint(checkpoint)
        return cls.from_loaded(checkpoint)

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The checkpoint's plain ``metadata``."""
        return self.loaded.metadata

    @property
    def normalisation(self) -> Normalisation:
        """Physical ↔ normalised units of the checkpoint."""
        return self.loaded.normalisation

    def frames(self) -> tuple[int, int]:
        """``(T_in, T_out)`` from the metadata, else the model config."""
        meta, cfg = self.metadata, self.loaded.config
        in_frames = int(meta.get("in_frames", getattr(cfg, "in_frames", 0)))
        out_frames = int(meta.get("out_frames", getattr(cfg, "out_frames", 0)))
        if in_frames < 1 or out_frames < 1:
            raise ValueError(f"checkpoint lacks in_frames/out_frames: {in_frames=} {out_frames=}")
        return in_frames, out_frames

    def preparation(self) -> Preparation:
        """The typed :class:`~pipelines.prepare.Preparation` of the checkpoint's data."""
        in_frames, out_frames = self.frames()
        return Preparation.from_dict(
            {**self.metadata, "in_frames": in_frames, "out_frames": out_frames}
        )

    def version(self) -> str:
        """:func:`model_version` of the model."""
        return model_version(self.loaded)

    @property
    def base_name(self) -> str:
        """The base nowcast the model corrects (``"none"`` for the paper's SimVP)."""
        return str(getattr(self.loaded.config, "base", "none"))

    @property
    def needs_archive(self) -> bool:
        """Whether :meth:`predict` needs ``archive=`` (the climatology base)."""
        return self.base_name == "climatology"

    def base(
        self,
        frames: np.ndarray,
        times: np.ndarray | None,
        horizon: int,
        archive: xr.DataArray | None = None,
    ) -> np.ndarray | None:
        """The base nowcast ``(L, C, H, W)`` of raw ``frames (T_in, C, H, W)`` (NaN kept), as the
        training windows build it; None for a plain SimVP."""
        if self.base_name == "none":
            return None
        if times is None:
            raise ValueError(f"the {self.base_name!r} base needs the input frames' times")
        if self.needs_archive and archive is None:
            raise ValueError("the 'climatology' base needs archive=<past frames>")
        return base_nowcast(self.base_name, frames, times, int(horizon), archive=archive)

    def predict(
        self,
        frames: np.ndarray,
        horizon: int,
        times: np.ndarray | None = None,
        archive: xr.DataArray | None = None,
    ) -> np.ndarray:
        """Forecast ``horizon`` steps from physical frames, NaN filled as in training.

        Parameters
        ----------
        frames : np.ndarray, shape (T_in, C, H, W)
            Physical units; NaN/inf = no data (filled with :func:`physical_fill`).
        horizon : int
            Lead times ``L``.
        times : array of datetime64, shape (T_in,), optional
            Valid times of ``frames``; required by a corrected model (its base nowcast).
        archive : xr.DataArray, optional
            ``(time, channel, y, x)`` past frames, prepared like ``frames``; required by the
            ``climatology`` base.

        Returns
        -------
        np.ndarray, shape (L, C, H, W), float32, physical units
        """
        values = np.asarray(frames, dtype=np.float32)  # (T_in, C, H, W)
        base = self.base(values, times, horizon, archive)  # from the raw frames, NaN kept
        fill = physical_fill(self.normalisation)  # (C,)
        bad = ~np.isfinite(values)
        if bad.any():
            values = np.where(bad, fill[None, :, None, None], values)  # (T_in, C, H, W)
        extra: dict[str, Any] = {}
        if base is not None:
            base = np.where(np.isfinite(base), base, fill[None, :, None, None])  # (L, C, H, W)
            extra["base"] = base[None].astype(np.float32)
        out = np.asarray(self.predictor(self.loaded, values[None], int(horizon), **extra))
        expected = (1, int(horizon), *values.shape[1:])
        if out.shape != expected:
            raise ValueError(f"model returned shape {out.shape}, expected {expected}")
        return out[0].astype(np.float32, copy=False)  # (L, C, H, W)

    def as_baseline(self) -> BaselineFn:
        """The method as ``history → forecast`` (the contract of :mod:`pipelines.baselines`)."""

        def forecast(history: xr.DataArray, steps: int, **context: Any) -> xr.DataArray:
            if history.dims[1:] != (CHANNEL, Y, X):
                raise ValueError(
                    f"SimVP needs history dims (time, channel, y, x), got {history.dims}"
                )
            out = self.predict(  # (steps, C, H, W)
                np.asarray(history.values),
                int(steps),
                times=history["time"].values,
                archive=context.get("archive"),
            )
            return as_forecast(history, out, time_step(history, context.get("time_step")))

        return forecast
