"""Forecast from a trained SimVP: physical units in, physical units out, any horizon.

:func:`predict` takes a checkpoint path, a :class:`~simvp_model.checkpoint.LoadedModel` or a
bare :class:`~simvp_model.model.SimVP`, and the user's frames ``(T_in, C, H, W)`` or
``(B, T_in, C, H, W)`` in physical units (numpy array, torch tensor, or a ``.npy``/``.npz``
path). The frames are checked against the checkpoint (T, C, finiteness; H and W any multiple
of the network's downsampling: the network is fully convolutional, so a model trained on tiles
forecasts the whole domain with the same weights), normalised, rolled out to ``horizon`` frames
(``SimVP.rollout``: whole ``T_in``-frame model calls fed back and truncated), de-normalised and
returned as a float32 numpy array of the same rank. A corrected model (``config.base != "none"``)
also takes the base nowcast's frames, in physical units, computed by the caller
(``pipelines.method.base_nowcasts``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from simvp_model.checkpoint import LoadedModel, load_checkpoint
from simvp_model.config import SimVPConfig
from simvp_model.corrected import CorrectedSimVP, build_model, run_model
from simvp_model.model import SimVP
from simvp_model.normalisation import Normalisation

logger = logging.getLogger(__name__)

ModelLike = str | os.PathLike[str] | LoadedModel | SimVP | CorrectedSimVP
FramesLike = np.ndarray | torch.Tensor | str | os.PathLike[str]


_MAGIC: dict[str, tuple[bytes, str]] = {
    ".npy": (b"\x93NUMPY", "NumPy .npy"),  # numpy.lib.format.MAGIC_PREFIX
    ".npz": (b"PK", "zip (.npz)"),  # every zip archive starts with "PK"
}


def load_frames(path: str | os.PathLike[str], key: str | None = None) -> np.ndarray:
    """Read frames from a ``.npy`` file or one array of a ``.npz`` file.

    Parameters
    ----------
    path : str or PathLike
        ``.npy`` or ``.npz`` file.
    key : str, optional
        Array name inside a ``.npz``; required when it holds more than one array.

    Returns
    -------
    numpy.ndarray
        The stored array (any dtype; :func:`predict` converts to float32).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in _MAGIC:
        with path.open("rb") as file:
            head = file.read(len(_MAGIC[suffix][0]))
        if head != _MAGIC[suffix][0]:
            # np.load would call anything without the magic bytes "pickled data".
            raise ValueError(
                f"{path} is not a {suffix} file: it does not start with the {_MAGIC[suffix][1]} "
                f"signature {_MAGIC[suffix][0]!r} (got {head!r})"
            )
    if suffix == ".npy":
        if key is not None:
            raise ValueError(f"--key {key!r} applies to .npz files, {path} is .npy")
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if key is None:
                if len(names) != 1:
                    raise ValueError(f"{path} holds arrays {names}; choose one with key/--key")
                key = names[0]
            if key not in names:
                raise ValueError(f"{path} has no array {key!r}; it holds {names}")
            return archive[key]
    raise ValueError(f"input must be a .npy or .npz file, got {path}")


def check_frames(frames: np.ndarray, config: SimVPConfig) -> None:
    """Raise ``ValueError`` unless ``frames`` fit ``config`` as model input.

    ``frames`` must be ``(T_in, C, H, W)`` or ``(B, T_in, C, H, W)`` with the checkpoint's
    ``in_frames`` and ``channels``, ``H`` and ``W`` multiples of ``2 ** downsampling_layers``
    (any domain: the network is fully convolutional) and only finite values.
    """
    if frames.ndim not in (4, 5):
        raise ValueError(
            f"frames must be (T, C, H, W) or (B, T, C, H, W), got ndim={frames.ndim} "
            f"shape={frames.shape}"
        )
    if frames.ndim == 5 and frames.shape[0] == 0:
        raise ValueError(f"frames hold no sequences: batch size B=0 in shape {frames.shape}")
    T, C, H, W = frames.shape[-4:]
    expected = (config.in_frames, config.channels)
    for name, got, want in zip(("T", "C"), (T, C), expected, strict=True):
        if got != want:
            raise ValueError(
                f"frames have {name}={got} but the model expects {name}={want} "
                f"(T, C = {expected}); got shape {frames.shape}"
            )
    factor = 2**config.downsampling_layers
    for name, got in (("H", H), ("W", W)):
        if got % factor:
            raise ValueError(
                f"frames have {name}={got}, not a multiple of the network's downsampling "
                f"{factor}; crop the domain (got shape {frames.shape})"
            )
    if frames.size and not np.issubdtype(frames.dtype, np.number):
        raise ValueError(f"frames must be numeric, got dtype {frames.dtype}")
    bad = int(np.size(frames) - np.count_nonzero(np.isfinite(frames)))
    if bad:
        n_nan = int(np.count_nonzero(np.isnan(frames)))
        raise ValueError(
            f"frames contain {bad} non-finite values ({n_nan} NaN, {bad - n_nan} inf) out of "
            f"{frames.size}; fill or mask missing data before predicting"
        )


def at_size(model: SimVP | CorrectedSimVP, height: int, width: int) -> SimVP | CorrectedSimVP:
    """``model`` itself, or a copy with the same weights built for an ``height × width`` domain.

    Every layer is convolutional, so the weights do not depend on the frame size; only the
    config's recorded ``height``/``width`` (checked on input) do.
    """
    config = model.config
    if (config.height, config.width) == (height, width):
        return model
    resized = build_model(
        config.replace(height=height, width=width), channels_last=model.channels_last
    )
    resized.load_state_dict(model.state_dict())
    return resized.to(_model_device(model))


def _resolve_model(
    model_or_checkpoint: ModelLike, normalisation: Normalisation | None
) -> tuple[SimVP | CorrectedSimVP, SimVPConfig, Normalisation]:
    if isinstance(model_or_checkpoint, str | os.PathLike):
        model_or_checkpoint = load_checkpoint(model_or_checkpoint)
    if isinstance(model_or_checkpoint, LoadedModel):
        if normalisation is not None:
            raise ValueError("normalisation is taken from the checkpoint; do not pass one")
        loaded = model_or_checkpoint
        return loaded.model, loaded.config, loaded.normalisation
    if isinstance(model_or_checkpoint, SimVP | CorrectedSimVP):
        config = model_or_checkpoint.config
        norm = (
            normalisation if normalisation is not None else Normalisation.identity(config.channels)
        )
        return model_or_checkpoint, config, norm
    raise ValueError(
        "model_or_checkpoint must be a checkpoint path, LoadedModel, SimVP or CorrectedSimVP, "
        f"got {type(model_or_checkpoint).__name__}"
    )


def predict(
    model_or_checkpoint: ModelLike,
    frames: FramesLike,
    horizon: int | None = None,
    *,
    normalisation: Normalisation | None = None,
    base: np.ndarray | torch.Tensor | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Forecast ``horizon`` frames after the given input frames.

    Parameters
    ----------
    model_or_checkpoint : path, LoadedModel or SimVP
        A bundle path (see :mod:`simvp_model.checkpoint`), a loaded bundle, or a bare network
        (then ``normalisation`` applies; default identity, i.e. the network works in
        physical units).
    frames : numpy.ndarray, torch.Tensor or path
        ``(T_in, C, H, W)`` or ``(B, T_in, C, H, W)`` in physical units; a ``.npy``/``.npz``
        path is read with :func:`load_frames`.
    horizon : int, optional
        Frames to forecast (default the model's ``out_frames``); any value >= 1 (roll-out).
    normalisation : Normalisation, optional
        Only with a bare ``SimVP``.
    base : numpy.ndarray or torch.Tensor, optional
        The base nowcast, physical units, ``(>= horizon, C, H, W)`` (or batched like
        ``frames``), finite (fill missing pixels as the inputs); required when
        ``config.base != "none"``, refused otherwise.
    batch_size : int
        Sequences per forward pass.
    device : str or torch.device, optional
        Where to run (default: where the model's weights are).

    Returns
    -------
    numpy.ndarray
        ``(horizon, C, H, W)`` or ``(B, horizon, C, H, W)`` float32 in physical units.
    """
    model, config, norm = _resolve_model(model_or_checkpoint, normalisation)
    if isinstance(frames, str | os.PathLike):
        frames = load_frames(frames)
    array = (
        frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    )
    check_frames(array, config)
    horizon = config.out_frames if horizon is None else horizon
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size=}")
    single = array.ndim == 4
    batch = array[None] if single else array  # (T, C, H, W) -> (1, T, C, H, W)
    encoded = norm.encode(batch.astype(np.float32, copy=False))
    base_encoded = _encode_base(base, batch, config, norm, int(horizon))
    model = at_size(model, batch.shape[-2], batch.shape[-1])
    run_device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.to(run_device).eval()
    outputs = []
    try:
        with torch.inference_mode():
            for start in range(0, len(encoded), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(encoded[start : start + batch_size]))
                x = x.to(run_device)
                b = None
                if base_encoded is not None:
                    b = torch.from_numpy(base_encoded[start : start + batch_size]).to(run_device)
                y = run_model(model, x, b, int(horizon))  # (b, horizon, C, H, W)
                outputs.append(norm.decode(y.float()).cpu().numpy())
    finally:
        model.train(was_training)
    result = np.concatenate(outputs).astype(np.float32, copy=False)
    logger.debug("predicted %s from input %s", result.shape, array.shape)
    return result[0] if single else result


def _encode_base(
    base: np.ndarray | torch.Tensor | None,
    batch: np.ndarray,
    config: SimVPConfig,
    norm: Normalisation,
    horizon: int,
) -> np.ndarray | None:
    """Normalised, NaN-filled base frames ``(B, >= horizon, C, H, W)``, or None without a base."""
    if config.base == "none":
        if base is not None:
            raise ValueError("this model has base='none'; it takes no base frames")
        return None
    if base is None:
        raise ValueError(f"this model corrects the {config.base!r} base: pass base=... frames")
    values = base.detach().cpu().numpy() if isinstance(base, torch.Tensor) else np.asarray(base)
    values = values[None] if values.ndim == 4 else values  # (B, L, C, H, W)
    if (
        values.ndim != 5
        or values.shape[0] != batch.shape[0]
        or values.shape[2:] != batch.shape[2:]
        or values.shape[1] < horizon
    ):
        frame = ", ".join(map(str, batch.shape[2:]))
        raise ValueError(
            f"base must be (B={batch.shape[0]}, >= {horizon}, {frame}), got {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("base frames contain non-finite values; fill them as the inputs")
    return np.ascontiguousarray(norm.encode(values.astype(np.float32)), dtype=np.float32)


def _model_device(model: torch.nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")
