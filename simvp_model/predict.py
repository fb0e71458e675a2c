"""Forecast from a trained SimVP: physical units in, physical units out, any horizon.

:func:`predict` takes a checkpoint path, a :class:`~simvp_model.checkpoint.LoadedModel` or a
bare :class:`~simvp_model.model.SimVP`, and the user's frames ``(T_in, C, H, W)`` or
``(B, T_in, C, H, W)`` in physical units (numpy array, torch tensor, or a ``.npy``/``.npz``
path). The frames are checked against the checkpoint (T, C, H, W, finiteness), normalised,
rolled out to ``horizon`` frames (``SimVP.rollout``: whole ``T_in``-frame model calls fed back
and truncated), de-normalised and returned as a float32 numpy array of the same rank.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from simvp_model.checkpoint import LoadedModel, load_checkpoint
from simvp_model.config import SimVPConfig
from simvp_model.model import SimVP
from simvp_model.normalisation import Normalisation

logger = logging.getLogger(__name__)

ModelLike = str | os.PathLike[str] | LoadedModel | SimVP
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
    ``in_frames``, ``channels``, ``height``, ``width`` and only finite values.
    """
    if frames.ndim not in (4, 5):
        raise ValueError(
            f"frames must be (T, C, H, W) or (B, T, C, H, W), got ndim={frames.ndim} "
            f"shape={frames.shape}"
        )
    if frames.ndim == 5 and frames.shape[0] == 0:
        raise ValueError(f"frames hold no sequences: batch size B=0 in shape {frames.shape}")
    T, C, H, W = frames.shape[-4:]
    expected = (config.in_frames, config.channels, config.height, config.width)
    for name, got, want in zip(("T", "C", "H", "W"), (T, C, H, W), expected, strict=True):
        if got != want:
            raise ValueError(
                f"frames have {name}={got} but the model expects {name}={want} "
                f"(T, C, H, W = {expected}); got shape {frames.shape}"
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


def _resolve_model(
    model_or_checkpoint: ModelLike, normalisation: Normalisation | None
) -> tuple[SimVP, SimVPConfig, Normalisation]:
    if isinstance(model_or_checkpoint, str | os.PathLike):
        model_or_checkpoint = load_checkpoint(model_or_checkpoint)
    if isinstance(model_or_checkpoint, LoadedModel):
        if normalisation is not None:
            raise ValueError("normalisation is taken from the checkpoint; do not pass one")
        loaded = model_or_checkpoint
        return loaded.model, loaded.config, loaded.normalisation
    if isinstance(model_or_checkpoint, SimVP):
        config = model_or_checkpoint.config
        norm = (
            normalisation if normalisation is not None else Normalisation.identity(config.channels)
        )
        return model_or_checkpoint, config, norm
    raise ValueError(
        "model_or_checkpoint must be a checkpoint path, LoadedModel or SimVP, "
        f"got {type(model_or_checkpoint).__name__}"
    )


def predict(
    model_or_checkpoint: ModelLike,
    frames: FramesLike,
    horizon: int | None = None,
    *,
    normalisation: Normalisation | None = None,
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
    run_device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.to(run_device).eval()
    outputs = []
    try:
        with torch.inference_mode():
            for start in range(0, len(encoded), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(encoded[start : start + batch_size]))
                x = x.to(run_device)
                y = model.rollout(x, int(horizon))  # (b, horizon, C, H, W)
                outputs.append(norm.decode(y.float()).cpu().numpy())
    finally:
        model.train(was_training)
    result = np.concatenate(outputs).astype(np.float32, copy=False)
    logger.debug("predicted %s from input %s", result.shape, array.shape)
    return result[0] if single else result


def _model_device(model: torch.nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")
