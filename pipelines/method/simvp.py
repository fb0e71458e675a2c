"""SimVP as a forecasting method: which checkpoint, how NaN inputs are filled, provenance.

Contract
--------
A :class:`SimVPMethod` wraps one loaded checkpoint (:class:`simvp_model.checkpoint.LoadedModel`)
and turns physical-unit input frames ``(T_in, C, H, W)`` (NaN = no data) into physical-unit
forecasts ``(L, C, H, W)``. Forecasting (:func:`pipelines.forecast.run.run_forecast`) and
verification (:func:`pipelines.evaluation.evaluate.evaluate_source`) both use it, so the rules
below hold
for both:

- **Default checkpoint**: the newest (by modification time) ``best.pt`` under
  ``DIR/models/<source>/``, searched recursively (:func:`default_checkpoint`); ``best.pt`` is the
  bundle :func:`simvp_model.lightning_module.fit` exports.
- **NaN fill**: pixels still NaN (or infinite) inside the input frames are set to what
  training used (:func:`pipelines.prepare.nan_fill_values`, shared with the training windows):
  the *physical zero* for ``dbr``/``log1p`` normalisations (no rain, no counts), the *training
  mean* for ``identity`` (temperature).
- **Base nowcast**: a corrected SimVP (``config.base != "none"``) gets its base from
  :func:`pipelines.method.base_nowcasts.base_nowcast` on the *raw* input frames (NaN kept, as the
  training
  windows compute it), for every lead time; base pixels without a value are filled like the
  inputs. The input times are needed (and, for ``climatology``, the archive of past frames).
- **Provenance**: the checkpoint file's SHA-256 (:func:`file_sha256`) and the package version,
  architecture and base (:func:`model_version`).
- **Pretrained fallback** (:meth:`SimVPMethod.pretrained`): when ``DIR/models/<source>/`` holds no
  ``best.pt``, :meth:`SimVPMethod.resolve` logs a warning and uses the shipped pretrained model
  (:mod:`pipelines.method.pretrained`) zero-shot: the source's native frames are resampled
  conservatively to the model's resolution (:mod:`pipelines.method.resample`) before the network
  (and
  its base nowcast) and the forecast back to the source's grid after it; the provenance says
  ``model: pretrained radar v1 (sha256 …)``. Its units must be the card's (mm/h for radar: a
  reflectivity source is converted by its catalog entry's Z–R relation at ingest); its time
  step is checked by the caller (:func:`pipelines.forecast.run.run_forecast`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import xarray as xr

from data_catalog.paths import DataDir
from data_catalog.vocabulary import CHANNEL, X, Y
from pipelines.baselines import BaselineFn, as_forecast, time_step
from pipelines.method.base_nowcasts import ARCHIVE_BASES, base_nowcast
from pipelines.method.pretrained import Pretrained, load_pretrained
from pipelines.method.resample import GridResampler, RegularGrid
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

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_NAME = "best.pt"
#: The shipped model a source without a trained checkpoint falls back to.
FALLBACK_PRETRAINED = "radar"

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
    grid : GridResampler, optional
        Source grid ↔ model grid remap applied around the network (pretrained models); None =
        the model runs on the prepared frames as they are.
    prepared : Preparation, optional
        How to prepare the source's frames, when not the checkpoint metadata's (pretrained
        models: the source's own variable on its native grid).
    label : str
        Provenance label of a pretrained model (``"pretrained radar v1 (sha256 …)"``); ``""``
        for a checkpoint trained on the source.
    """

    loaded: Any
    name: str = "<in-memory model>"
    sha256: str = ""
    predictor: Predictor = field(default=_predict, repr=False)
    grid: GridResampler | None = field(default=None, repr=False)
    prepared: Preparation | None = None
    label: str = ""

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
        fallback: bool = True,
    ) -> SimVPMethod:
        """A method from a path, a loaded model, a method, or None (:func:`default_checkpoint`).

        With ``checkpoint=None`` and no trained model for ``source``, ``fallback=True`` uses the
        shipped pretrained model zero-shot (:meth:`pretrained`, logged); ``fallback=False``
        raises the ``FileNotFoundError`` (evaluation needs a checkpoint's test split).
        """
        if isinstance(checkpoint, SimVPMethod):
            return checkpoint
        if checkpoint is None:
            try:
                found = default_checkpoint(source, data_dir)
            except FileNotFoundError as missing:
                if not fallback:
                    raise
                try:
                    method = cls.pretrained(source, data_dir=data_dir)
                except (FileNotFoundError, ValueError) as unusable:
                    raise FileNotFoundError(
                        f"{missing}; the pretrained fallback is not usable either: {unusable}"
                    ) from unusable
                logger.warning(
                    "no trained model for %r (%s): forecasting zero-shot with %s, inputs "
                    "resampled to %g km",
                    source,
                    missing,
                    method.label,
                    method.grid.target.resolution_m / 1000 if method.grid else float("nan"),
                )
                return method
            return cls.from_checkpoint(found)
        if isinstance(checkpoint, str | os.PathLike):
            return cls.from_checkpoint(checkpoint)
        return cls.from_loaded(checkpoint)

    @classmethod
    def pretrained(
        cls,
        source: str,
        store: xr.Dataset | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        name: str = FALLBACK_PRETRAINED,
        model: Pretrained | None = None,
        crs: pyproj.CRS | None = None,
        grid: RegularGrid | None = None,
    ) -> SimVPMethod:
        """The shipped pretrained model, adapted to ``source``'s grid (zero-shot).

        Parameters
        ----------
        source : str
            Catalog source name (recorded in the preparation).
        store : xarray.Dataset, optional
            Observation store or prepared frames (``y``/``x`` coordinates, and a ``crs``
            variable unless ``crs`` is given); default ``DIR/stores/<source>.zarr``.
        data_dir : path, optional
            Data directory for the default store.
        name : str
            Pretrained model (:func:`pipelines.method.pretrained.load_pretrained`).
        model : Pretrained, optional
            Already loaded model (tests, repeated use).
        crs : pyproj.CRS, optional
            The grid's CRS when ``store`` has no ``crs`` variable.
        grid : RegularGrid, optional
            The grid the frames come on, when not the store's (e.g. frames prepared with a
            coarsening, as evaluation scores them).

        Raises
        ------
        FileNotFoundError
            No observation store, or no such pretrained model.
        ValueError
            The store has no variable in the model's units (e.g. reflectivity not converted to
            mm/h), several, or a grid that cannot be resampled (geographic, irregular).
        """
        if store is None:
            path = DataDir.resolve(data_dir).store(source)
            if not os.path.exists(path):
                raise FileNotFoundError(f"no observation store {path}: run nowcast ingest first")
            store = xr.open_zarr(path, chunks=None)
        model = load_pretrained(name) if model is None else model
        card, loaded = model.card, model.loaded
        names = [str(v) for v in store.data_vars if v not in ("crs", "frame_present")]
        names = [v for v in names if store[v].ndim >= 2 and {Y, X} <= set(store[v].dims)]
        units = {v: str(store[v].attrs.get("units", "")) for v in names}
        matching = [v for v in names if units[v] == card.units]
        channels = int(loaded.config.channels)
        if len(matching) != channels:
            raise ValueError(
                f"the pretrained {card.name!r} model needs {channels} variable(s) in "
                f"{card.units!r}; source {source!r} has {units or 'none'} (a reflectivity radar "
                "must be converted to rain rate by its catalog entry's Z-R relation, "
                "reader_options zr_a/zr_b)"
            )
        resampler = GridResampler.for_source(
            grid if grid is not None else RegularGrid.from_store(store, crs),
            card.resolution_m,
            multiple=2 ** int(loaded.config.downsampling_layers),
        )
        in_frames = int(loaded.config.in_frames)
        out_frames = int(loaded.config.out_frames)
        prepared = Preparation(
            variables=tuple(matching),
            in_frames=in_frames,
            out_frames=out_frames,
            time_step=card.time_step,
            sources=(source,),
        )
        return cls(
            loaded,
            str(model.path),
            card.sha256,
            grid=resampler,
            prepared=prepared,
            label=card.label,
        )

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
        if self.prepared is not None:
            return self.prepared
        in_frames, out_frames = self.frames()
        return Preparation.from_dict(
            {**self.metadata, "in_frames": in_frames, "out_frames": out_frames}
        )

    def version(self) -> str:
        """:func:`model_version` of the model (and, for a pretrained one, its label and grid)."""
        if not self.label:
            return model_version(self.loaded)
        detail = ""
        if self.grid is not None:
            source_km = self.grid.source.resolution_m / 1000
            model_km = self.grid.target.resolution_m / 1000
            detail = f", zero-shot: inputs resampled {source_km:g} km -> {model_km:g} km and back"
        return f"model: {self.label}{detail}; {model_version(self.loaded)}"

    @property
    def base_name(self) -> str:
        """The base nowcast the model corrects (``"none"`` for the paper's SimVP)."""
        return str(getattr(self.loaded.config, "base", "none"))

    @property
    def needs_archive(self) -> bool:
        """Whether :meth:`predict` needs ``archive=`` (the climatology-based bases)."""
        return self.base_name in ARCHIVE_BASES

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
            raise ValueError(f"the {self.base_name!r} base needs archive=<past frames>")
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
        if self.grid is not None:
            values = self.grid.to_model(values)  # (T_in, C, H_m, W_m), NaN outside the domain
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
        if self.grid is not None:
            return self.grid.to_source(out[0])  # (L, C, H, W) on the source grid
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
