"""The product's checkpoint bundle: everything needed to predict, in one safe file.

A bundle is a ``dict`` written with ``torch.save`` holding only tensors, dicts, lists,
tuples, str, int, float, bool and None, so ``torch.load(path, weights_only=True)`` reads it::

    {"format": "simvp-nowcast-checkpoint", "format_version": 1,
     "state_dict": {name: tensor},            # SimVP weights, contiguous, on CPU
     "config": SimVPConfig.to_dict(),
     "normalisation": Normalisation.to_dict(),
     "metrics": {name: float},                # test-split scores (physical units)
     "metadata": {...}}                       # data provenance, train config, software

Lightning's own ``.ckpt`` files (optimiser state etc.) are only used to resume training;
:func:`simvp_model.engine.fit` exports the best one as this bundle (``best.pt``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from simvp_model.config import SimVPConfig
from simvp_model.corrected import CorrectedSimVP, build_model
from simvp_model.model import SimVP
from simvp_model.normalisation import Normalisation

logger = logging.getLogger(__name__)

FORMAT = "simvp-nowcast-checkpoint"
FORMAT_VERSION = 1
_PLAIN_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class LoadedModel:
    """A SimVP network restored from a bundle, in ``eval()`` mode.

    Attributes
    ----------
    model : SimVP or CorrectedSimVP
        The network, on the requested device (corrected when ``config.base != "none"``).
    config : SimVPConfig
        Its configuration.
    normalisation : Normalisation
        Physical ↔ model units.
    metrics : dict of str to float
        Test-split scores recorded at training time.
    metadata : dict
        Provenance recorded at training time.
    path : str
        Where it was loaded from.
    """

    model: SimVP | CorrectedSimVP
    config: SimVPConfig
    normalisation: Normalisation
    metrics: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str = ""


def check_plain(value: Any, where: str = "metadata") -> None:
    """Raise ``ValueError`` unless ``value`` is made only of types ``weights_only`` loads.

    Allowed: dict with str keys, list, tuple, str, int, float, bool, None, torch.Tensor.
    """
    # exact types: subclasses (numpy.float64, torch's TorchVersion str) do not unpickle safely
    if type(value) in _PLAIN_SCALARS or isinstance(value, torch.Tensor):
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise ValueError(f"{where} has a non-str key {key!r} ({type(key).__name__})")
            check_plain(item, f"{where}[{key!r}]")
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
        return
    raise ValueError(
        f"{where} = {value!r} has type {type(value).__name__}; a checkpoint stores only "
        "dict/list/tuple/str/int/float/bool/None/Tensor (convert paths and numpy values first)"
    )


def _float_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in (metrics or {}).items():
        number = float(value.item() if isinstance(value, torch.Tensor) else value)
        if not isinstance(name, str):
            raise ValueError(f"metric names must be str, got {name!r}")
        out[name] = number
    return out


def state_dict_mismatch(
    reference: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor]
) -> list[str]:
    """Describe how ``state_dict`` differs from ``reference`` (empty list: it fits)."""
    problems = []
    missing = sorted(set(reference) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(reference))
    if missing:
        problems.append(f"missing weights {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        more = " ..." if len(unexpected) > 5 else ""
        problems.append(f"unexpected weights {unexpected[:5]}{more}")
    for name in sorted(set(reference) & set(state_dict)):
        if tuple(reference[name].shape) != tuple(state_dict[name].shape):
            problems.append(
                f"{name}: shape {tuple(state_dict[name].shape)} in the file, "
                f"{tuple(reference[name].shape)} for the config"
            )
    return problems


def save_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    config: SimVPConfig,
    normalisation: Normalisation,
    metrics: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Write a bundle atomically (temporary file, then rename).

    Parameters
    ----------
    path : str or PathLike
        Destination file (conventionally ``.../best.pt``); parent folders are created.
    model : torch.nn.Module
        A :class:`SimVP` built from ``config`` (or a module with its state dict).
    config : SimVPConfig
        The model configuration.
    normalisation : Normalisation
        Physical ↔ model units; its channel count must equal ``config.channels``.
    metrics : mapping of str to number, optional
        Scores to record (converted to float).
    metadata : mapping, optional
        Plain provenance data (see :func:`check_plain`).

    Returns
    -------
    str
        The path written.
    """
    if normalisation.channels != config.channels:
        raise ValueError(
            f"normalisation has {normalisation.channels} channels, config has {config.channels}"
        )
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    same = isinstance(model, SimVP | CorrectedSimVP) and model.config == config
    reference = model.state_dict() if same else build_model(config).state_dict()
    problems = state_dict_mismatch(reference, state)
    if problems:
        raise ValueError(f"model weights do not match the config: {'; '.join(problems)}")
    meta = dict(metadata or {})
    check_plain(meta)
    bundle = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": state,
        "config": config.to_dict(),
        "normalisation": normalisation.to_dict(),
        "metrics": _float_metrics(metrics),
        "metadata": meta,
    }
    check_plain(bundle["config"], "config")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    torch.save(bundle, tmp)
    os.replace(tmp, target)
    logger.info("saved checkpoint %s", target)
    return str(target)


def config_differences(
    found: SimVPConfig, expected: SimVPConfig | Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """``{field: (in file, expected)}`` for every differing field.

    ``expected`` may be a full :class:`SimVPConfig` or a mapping of only the fields to check.
    """
    have = found.to_dict()
    want = expected.to_dict() if isinstance(expected, SimVPConfig) else dict(expected)
    unknown = sorted(set(want) - set(have))
    if unknown:
        raise ValueError(f"expected_config names unknown fields {unknown}; valid: {sorted(have)}")

    def norm(v: Any) -> Any:
        return list(v) if isinstance(v, tuple | list) else v

    return {k: (have[k], want[k]) for k in want if norm(have[k]) != norm(want[k])}


_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")
_REFUSED_GLOBAL = re.compile(r"Unsupported global: (.*?)(?: was not an allowed global|\. |\n|$)")
_UNPICKLER_ERROR = re.compile(r"WeightsUnpickler error:\s*(\S[^\n]*)")


def load_error_reason(error: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` failed, in one plain line for the user.

    Torch's refusal text carries terminal colour codes and advice to allow-list the refused
    global (``add_safe_globals([eval])``), which would run the file's code: both are dropped,
    keeping only what was refused. Other failures (a text or truncated file) give their type
    and first line.
    """
    text = _ANSI_CODE.sub("", str(error)).strip()
    refused = _REFUSED_GLOBAL.search(text)
    if refused:
        return (
            f"it refers to code ({refused.group(1).strip()}), not only tensors and plain data; "
            "refusing to load it"
        )
    unreadable = _UNPICKLER_ERROR.search(text)
    detail = unreadable.group(1).strip() if unreadable else (text.splitlines() or [""])[0]
    return f"not a PyTorch checkpoint file ({type(error).__name__}: {detail})"


def check_resumable(path: str | os.PathLike[str]) -> None:
    """Raise ``ValueError`` unless ``path`` is a Lightning checkpoint training can resume from.

    Read like the best weights (``weights_only=True``: tensors and plain data only), so a
    truncated, foreign or code-carrying ``last.ckpt`` is refused before the Trainer starts.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling refuses anything but plain data
        raise ValueError(
            f"cannot resume from {path}: {load_error_reason(error)}; remove it to train anew"
        ) from error
    missing = [k for k in ("state_dict", "epoch") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ValueError(
            f"cannot resume from {path}: not a Lightning training checkpoint (no {missing}); "
            "remove it to train anew"
        )


def load_checkpoint(
    path: str | os.PathLike[str],
    expected_config: SimVPConfig | Mapping[str, Any] | None = None,
    map_location: str | torch.device = "cpu",
) -> LoadedModel:
    """Restore a bundle written by :func:`save_checkpoint`, refusing mismatches.

    Parameters
    ----------
    path : str or PathLike
        The bundle file.
    expected_config : SimVPConfig or mapping, optional
        Refuse the checkpoint unless its config equals this one (mapping: only those fields).
    map_location : str or torch.device
        Device of the restored model.

    Returns
    -------
    LoadedModel
        Model in ``eval()`` mode plus config, normalisation, metrics and metadata.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Not a bundle, unsupported format version, config differs from ``expected_config``
        (the message names the fields), or weights that do not fit the config.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling refuses anything but plain data
        raise ValueError(
            f"{path} is not a readable simvp-nowcast checkpoint: {load_error_reason(error)}"
        ) from error
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        found = bundle.get("format") if isinstance(bundle, dict) else type(bundle).__name__
        raise ValueError(
            f"{path} is not a simvp-nowcast checkpoint (format={found!r}); Lightning .ckpt "
            "files are for resuming training, use the exported best.pt"
        )
    if bundle.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {bundle.get('format_version')!r}; "
            f"this code reads version {FORMAT_VERSION}"
        )
    config = SimVPConfig.from_dict(bundle["config"])
    if expected_config is not None:
        diff = config_differences(config, expected_config)
        if diff:
            detail = ", ".join(
                f"{k}: {have!r} in file != {want!r} expected" for k, (have, want) in diff.items()
            )
            raise ValueError(f"checkpoint {path} does not match the expected config: {detail}")
    state = bundle["state_dict"]
    model = build_model(config)
    problems = state_dict_mismatch(model.state_dict(), state)
    if problems:
        raise ValueError(
            f"checkpoint {path}: weights do not match its config: {'; '.join(problems)}"
        )
    normalisation = Normalisation.from_dict(bundle["normalisation"])
    if normalisation.channels != config.channels:
        raise ValueError(
            f"checkpoint {path}: normalisation has {normalisation.channels} channels, "
            f"config has {config.channels}"
        )
    model.load_state_dict(state, strict=True)
    model.to(map_location).eval()
    return LoadedModel(
        model=model,
        config=config,
        normalisation=normalisation,
        metrics=dict(bundle.get("metrics", {})),
        metadata=dict(bundle.get("metadata", {})),
        path=str(path),
    )
