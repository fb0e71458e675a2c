"""Alerts of the live verification: skill below a floor against persistence, or stale inputs.

:func:`check_alerts` returns one line per alert (empty = all well); the CLI prints the first and
exits non-zero, the ``verify`` flow fails with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipelines.live import skill as sk
from pipelines.live.scoring import SIMVP
from pipelines.live.store import VerificationStore


@dataclass(frozen=True)
class AlertConfig:
    """When a verification run alerts.

    Parameters
    ----------
    window : str
        Span of init times the rolling skill is computed over, e.g. ``"24h"``.
    min_skill : float
        Alert when the MSE skill of SimVP against ``reference`` over ``window`` is below this
        (0 = no better than the reference).
    min_entries : int
        Fewer verified forecasts than this in the window: no skill alert (too few cases).
    reference : str
        The reference method (a recomputed baseline).
    max_input_age : str or None
        Alert when the newest observation is older than this before ``as_of``; None = never.
    """

    window: str = "24h"
    min_skill: float = 0.0
    min_entries: int = 3
    reference: str = "persistence"
    max_input_age: str | None = "90min"

    def __post_init__(self) -> None:
        if pd.Timedelta(self.window) <= pd.Timedelta(0):
            raise ValueError(f"window must be a positive duration, got {self.window!r}")
        if self.min_entries < 1:
            raise ValueError(f"min_entries must be >= 1, got {self.min_entries}")
        if self.max_input_age is not None and pd.Timedelta(self.max_input_age) <= pd.Timedelta(0):
            raise ValueError(f"max_input_age must be positive or None, got {self.max_input_age!r}")


def check_alerts(
    store: VerificationStore,
    as_of: pd.Timestamp,
    observed_until: pd.Timestamp | None,
    config: AlertConfig,
) -> list[str]:
    """One line per alert raised by ``config`` at ``as_of`` (naive UTC).

    Parameters
    ----------
    store : VerificationStore
        The scores.
    as_of : pandas.Timestamp
        The verification time.
    observed_until : pandas.Timestamp or None
        Newest observation at or before ``as_of`` (None: none at all).
    config : AlertConfig
        The rules.
    """
    lines = []
    if config.max_input_age is not None:
        limit = pd.Timedelta(config.max_input_age)
        if observed_until is None:
            lines.append(f"stale inputs: no observation at or before {as_of:%Y-%m-%dT%H:%MZ}")
        elif as_of - observed_until > limit:
            lines.append(
                f"stale inputs: newest observation {observed_until:%Y-%m-%dT%H:%MZ} is "
                f"{as_of - observed_until} old at {as_of:%Y-%m-%dT%H:%MZ} (limit {limit})"
            )
    rows = store.read(as_of - pd.Timedelta(config.window), as_of)
    pairs = sk.paired(sk.window(rows, as_of, config.window), SIMVP, config.reference)
    n = sk.entries(pairs)
    value = sk.skill(pairs)
    if n >= config.min_entries and value < config.min_skill:
        lines.append(
            f"skill against {config.reference} over the last {config.window} is {value:.3f} "
            f"(< {config.min_skill:g}) on {n} verified forecasts"
        )
    return lines
