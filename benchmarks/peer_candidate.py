"""This project's SimVP as a candidate of ``../shared/peer/peer_bench.py``, plus a weight mapping.

``build(cfg) -> SimVP`` maps one harness config (keys ``name``, ``in_shape`` (T, C, H, W),
``hid_S``, ``hid_T``, ``N_S``, ``N_T``, ``model_type``, ``drop_path``, ``batch``) to
:class:`simvp_model.SimVP` with the same hyper-parameters: OpenSTL spatial layers, ``mlp_ratio`` 8,
``drop`` 0, 3×3 spatial kernels (``SimVP_Model``'s defaults) and ``out_frames = T`` (the peer maps T
frames to T frames in one call). The model is built with the product's defaults (channels_last);
``build`` also applies the process setting the product's entry points apply (malloc tuning),
``build_bare`` does not.

:func:`peer_to_ours` translates an OpenSTL ``SimVP_Model`` state-dict key to ours, so that the
fidelity check of :mod:`benchmarks.peer_compare` can load the peer's weights into our network.
"""

from __future__ import annotations

import re
from typing import Any

from simvp_model.allocator import tune_glibc_malloc
from simvp_model.config import SimVPConfig
from simvp_model.model import SimVP

# harness key -> our SimVPConfig field (the rest are fixed by SimVP_Model's defaults)
_FIELDS = {
    "hid_S": "spatial_hidden",
    "hid_T": "temporal_hidden",
    "N_S": "spatial_layers",
    "N_T": "temporal_layers",
    "drop_path": "drop_path",
}


def config_from_harness(cfg: dict[str, Any]) -> SimVPConfig:
    """The :class:`SimVPConfig` of one peer_bench config dict (raises ``ValueError`` if invalid)."""
    missing = sorted({"in_shape", "model_type", *_FIELDS} - set(cfg))
    if missing:
        raise ValueError(f"harness config {cfg.get('name')!r} lacks keys {missing}")
    t, c, h, w = cfg["in_shape"]
    return SimVPConfig(
        in_frames=t,
        out_frames=t,
        channels=c,
        height=h,
        width=w,
        spatial="openstl",
        translator=str(cfg["model_type"]).lower(),
        mlp_ratio=8.0,
        drop=0.0,
        spatial_kernel=3,
        **{ours: cfg[theirs] for theirs, ours in _FIELDS.items()},
    )


def build(cfg: dict[str, Any]) -> SimVP:
    """Candidate factory for peer_bench.py: ours as the product's entry points run it.

    ``nowcast`` and the flows call :func:`simvp_model.allocator.tune_glibc_malloc` first (a no-op
    when the environment already sets the allocator, as the harness's ``tuned`` mode does), so
    this factory does too; :func:`build_bare` leaves the process as it found it.
    """
    tune_glibc_malloc()
    return build_bare(cfg)


def build_bare(cfg: dict[str, Any]) -> SimVP:
    """Candidate factory: the network alone with its default settings (channels_last)."""
    return SimVP(config_from_harness(cfg))


def build_nchw(cfg: dict[str, Any]) -> SimVP:
    """The same network on the plain NCHW path (``channels_last=False``), for ablations."""
    return SimVP(config_from_harness(cfg), channels_last=False)


# (pattern on the peer key, replacement giving our key), applied in order, first match wins.
_KEY_RULES = [
    (r"^enc\.enc\.(\d+)\.conv\.conv\.(.*)$", r"encoder.layers.\1.conv.\2"),
    (r"^enc\.enc\.(\d+)\.conv\.norm\.(.*)$", r"encoder.layers.\1.norm.\2"),
    (r"^dec\.dec\.(\d+)\.conv\.conv\.(.*)$", r"decoder.layers.\1.conv.\2"),
    (r"^dec\.dec\.(\d+)\.conv\.norm\.(.*)$", r"decoder.layers.\1.norm.\2"),
    (r"^dec\.readout\.(.*)$", r"decoder.readout.\1"),
    # IncepU: gInception_ST(conv1, layers[j] = GroupConv2d(conv, norm))
    (r"^hid\.(enc|dec)\.(\d+)\.conv1\.(.*)$", r"translator.\1.\2.conv1.\3"),
    (
        r"^hid\.(enc|dec)\.(\d+)\.layers\.(\d+)\.(conv|norm)\.(.*)$",
        r"translator.\1.\2.branches.\3.\4.\5",
    ),
    # gSTA / TAU: MetaBlock(block = GASubBlock | TAUSubBlock, reduction)
    (r"^hid\.enc\.(\d+)\.reduction\.(.*)$", r"translator.projections.\1.\2"),
    (
        r"^hid\.enc\.(\d+)\.block\.attn\.spatial_gating_unit\.(conv0|conv_spatial)\.(.*)$",
        r"translator.blocks.\1.attn.lka.\2.\3",
    ),
    (
        r"^hid\.enc\.(\d+)\.block\.attn\.spatial_gating_unit\.(conv1|fc)\.(.*)$",
        r"translator.blocks.\1.attn.\2.\3",
    ),
    (r"^hid\.enc\.(\d+)\.block\.(.*)$", r"translator.blocks.\1.\2"),
]


def peer_to_ours(key: str) -> str:
    """Our state-dict key for an OpenSTL ``SimVP_Model`` key (``ValueError`` if unmapped)."""
    for pattern, repl in _KEY_RULES:
        new, n = re.subn(pattern, repl, key)
        if n:
            new = new.replace("translator.enc.", "translator.encoder.")
            new = new.replace("translator.dec.", "translator.decoder.")
            return new.replace(".mlp.dwconv.dwconv.", ".mlp.dwconv.")  # timm-style DWConv wrapper
    raise ValueError(f"no mapping for peer state-dict key {key!r}")
