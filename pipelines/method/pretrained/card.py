"""Model cards of the shipped pretrained models and the hash-checked loader.

Card format
-----------
``MODEL_CARD.md`` is free markdown for people plus one machine-read table (the first one whose
header is ``| field | value |``)::

    | field | value |
    |---|---|
    | name | radar |
    | version | v1 |
    | file | weights.pt |
    | sha256 | `<64 hex>` |
    | resolution_m | 4000 |
    | time_step | 5min |
    | units | mm/h |

:func:`card_table` renders that table; :func:`load_card` parses it; :func:`load_pretrained`
checks the weights against it (SHA-256, and the resolution/time step the checkpoint's
``metadata["pretrained"]`` records).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simvp_model.checkpoint import LoadedModel, load_checkpoint, save_checkpoint

logger = logging.getLogger(__name__)

PRETRAINED_ROOT = Path(__file__).resolve().parent
CARD_NAME = "MODEL_CARD.md"
WEIGHTS_NAME = "weights.pt"
_FIELDS = ("name", "version", "file", "sha256", "resolution_m", "time_step", "units")
_ROW = re.compile(r"^\|\s*([A-Za-z0-9_]+)\s*\|\s*`?([^|`]*?)`?\s*\|\s*$")


class PretrainedIntegrityError(ValueError):
    """A pretrained weights file does not match its model card."""


@dataclass(frozen=True)
class ModelCard:
    """The machine-read fields of a ``MODEL_CARD.md``.

    Parameters
    ----------
    name : str
        Model name (directory name), e.g. ``"radar"``.
    version : str
        e.g. ``"v1"``.
    file : str
        Weights file name next to the card.
    sha256 : str
        Hex SHA-256 of the weights file.
    resolution_m : float
        Grid spacing the model works at, metres.
    time_step : str
        Time step of its frames (pandas offset string, e.g. ``"5min"``).
    units : str
        Physical units of its input and output (``"mm/h"`` for radar).
    """

    name: str
    version: str
    file: str
    sha256: str
    resolution_m: float
    time_step: str
    units: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"card sha256 must be 64 lower-case hex digits, got {self.sha256!r}")
        if not float(self.resolution_m) > 0:
            raise ValueError(f"card resolution_m must be > 0, got {self.resolution_m!r}")
        object.__setattr__(self, "resolution_m", float(self.resolution_m))
        pd.Timedelta(pd.tseries.frequencies.to_offset(self.time_step))  # a clear error if bad

    @property
    def step(self) -> pd.Timedelta:
        """:attr:`time_step` as a Timedelta."""
        return pd.Timedelta(pd.tseries.frequencies.to_offset(self.time_step))

    @property
    def label(self) -> str:
        """``"pretrained radar v1 (sha256 0123456789ab)"`` (provenance and logs)."""
        return f"pretrained {self.name} {self.version} (sha256 {self.sha256[:12]})"

    @classmethod
    def parse(cls, text: str, where: str = "model card") -> ModelCard:
        """Read the ``| field | value |`` table of a card's markdown."""
        values: dict[str, str] = {}
        in_table = False
        for line in text.splitlines():
            stripped = line.strip()
            if re.fullmatch(r"\|\s*field\s*\|\s*value\s*\|", stripped):
                in_table = True
                continue
            if in_table:
                if not stripped.startswith("|"):
                    break
                match = _ROW.match(stripped)
                if match and match.group(1) in _FIELDS:
                    values[match.group(1)] = match.group(2).strip()
        missing = [f for f in _FIELDS if f not in values]
        if missing:
            raise ValueError(f"{where} lacks fields {missing} in its '| field | value |' table")
        return cls(**values)  # type: ignore[arg-type]


def card_table(card: ModelCard) -> str:
    """The machine-read markdown table of ``card`` (read back by :meth:`ModelCard.parse`)."""
    rows = [
        ("name", card.name),
        ("version", card.version),
        ("file", card.file),
        ("sha256", f"`{card.sha256}`"),
        ("resolution_m", f"{card.resolution_m:g}"),
        ("time_step", card.time_step),
        ("units", card.units),
    ]
    return "\n".join(["| field | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


def _root(root: str | os.PathLike[str] | None) -> Path:
    return PRETRAINED_ROOT if root is None else Path(root)


def available(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the pretrained models with a card and a weights file under ``root``."""
    base = _root(root)
    return sorted(
        p.name for p in base.iterdir() if (p / CARD_NAME).is_file() and (p / WEIGHTS_NAME).is_file()
    )


def load_card(name: str = "radar", root: str | os.PathLike[str] | None = None) -> ModelCard:
    """Parse ``<root>/<name>/MODEL_CARD.md`` (``root`` default: the shipped models).

    Raises
    ------
    FileNotFoundError
        If there is no such model, listing the shipped ones.
    """
    path = _root(root) / name / CARD_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no pretrained model {name!r} ({path} missing); available: {available(root)}"
        )
    card = ModelCard.parse(path.read_text(encoding="utf-8"), str(path))
    if card.name != name:
        raise ValueError(f"{path} describes model {card.name!r}, not {name!r}")
    return card


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Pretrained:
    """A loaded pretrained model with its card.

    Parameters
    ----------
    loaded : LoadedModel
        Network, config, normalisation and metadata.
    card : ModelCard
        Its card (hash already checked).
    path : Path
        The weights file.
    """

    loaded: LoadedModel
    card: ModelCard
    path: Path


def load_pretrained(
    name: str = "radar",
    root: str | os.PathLike[str] | None = None,
    map_location: str = "cpu",
) -> Pretrained:
    """Load a shipped pretrained model after checking its weights against the card.

    Parameters
    ----------
    name : str
        Model name (``"radar"``).
    root : path, optional
        Directory of the models (default: the package's).
    map_location : str
        Device for the weights.

    Returns
    -------
    Pretrained

    Raises
    ------
    FileNotFoundError
        No such model or no weights file.
    PretrainedIntegrityError
        The file's SHA-256 differs from the card's, or the checkpoint's recorded resolution or
        time step differs from the card's.
    """
    card = load_card(name, root)
    path = _root(root) / name / card.file
    if not path.is_file():
        raise FileNotFoundError(f"pretrained model {name!r}: weights file {path} is missing")
    sha = _sha256(path)
    if sha != card.sha256:
        raise PretrainedIntegrityError(
            f"pretrained model {name!r}: {path} has SHA-256 {sha}, its card says {card.sha256}; "
            "the file is corrupt or the card is stale (rebuild with "
            "python -m benchmarks.pretrained --ship)"
        )
    loaded = load_checkpoint(path, map_location=map_location)
    recorded = dict(loaded.metadata.get("pretrained") or {})
    for key, want in (("resolution_m", card.resolution_m), ("time_step", card.time_step)):
        got = recorded.get(key)
        same = (
            got is not None and float(got) == float(want)
            if key == "resolution_m"
            else got is not None
            and pd.Timedelta(pd.tseries.frequencies.to_offset(got)) == card.step
        )
        if not same:
            raise PretrainedIntegrityError(
                f"pretrained model {name!r}: checkpoint metadata pretrained.{key}={got!r}, card "
                f"says {want!r}"
            )
    logger.info("loaded %s from %s", card.label, path)
    return Pretrained(loaded, card, path)


def package_model(
    directory: str | os.PathLike[str],
    model: Any,
    config: Any,
    normalisation: Any,
    *,
    name: str,
    version: str,
    resolution_m: float,
    time_step: str,
    units: str,
    card_text: str,
    metadata: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> ModelCard:
    """Write ``directory/weights.pt`` and ``directory/MODEL_CARD.md`` (hash filled in).

    Parameters
    ----------
    directory : path
        ``<root>/<name>``.
    model, config, normalisation
        As :func:`simvp_model.checkpoint.save_checkpoint` takes them.
    name, version, resolution_m, time_step, units
        The card's machine-read fields (also stored in ``metadata["pretrained"]``).
    card_text : str
        Markdown of the card; ``{table}`` is replaced by :func:`card_table`, ``{sha256}`` by
        the weights' hash.
    metadata, metrics : mapping, optional
        Stored in the bundle.

    Returns
    -------
    ModelCard
    """
    target = Path(directory)
    if target.name != name:
        raise ValueError(f"model {name!r} must live in a directory named {name!r}, not {target}")
    meta = dict(metadata or {})
    meta["pretrained"] = {
        "name": name,
        "version": version,
        "resolution_m": float(resolution_m),
        "time_step": str(time_step),
        "units": str(units),
    }
    path = target / WEIGHTS_NAME
    save_checkpoint(path, model, config, normalisation, metrics, meta)
    card = ModelCard(name, version, WEIGHTS_NAME, _sha256(path), resolution_m, time_step, units)
    text = card_text.replace("{table}", card_table(card)).replace("{sha256}", card.sha256)
    (target / CARD_NAME).write_text(text, encoding="utf-8")
    ModelCard.parse(text, str(target / CARD_NAME))  # the card must read back
    return card
