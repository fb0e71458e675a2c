"""Skill against a reference on the same cases: the one aggregation the page and alerts use.

Skill of a score ``S`` (negatively oriented, e.g. MSE) against a reference ``R`` over a set of
cases is ``1 - sum(S) / sum(R)``, summed over the (init time, lead, variable) cases where both
methods have a finite value; 0 = as good as the reference, 1 = perfect, < 0 = worse.
"""

from __future__ import annotations

import pandas as pd

KEYS = ["init_time", "lead_time_minutes", "variable"]


def paired(rows: pd.DataFrame, method: str, reference: str, score: str = "mse") -> pd.DataFrame:
    """Rows of ``score`` with ``method`` and ``reference`` side by side on the same cases.

    Returns
    -------
    pandas.DataFrame
        Columns ``init_time, lead_time_minutes, variable, method, reference``; only cases where
        both values are finite.
    """
    subset = rows[(rows["score"] == score) & rows["threshold"].isna()]
    a = subset[subset["method"] == method].set_index(KEYS)["value"].rename("method")
    b = subset[subset["method"] == reference].set_index(KEYS)["value"].rename("reference")
    both = pd.concat([a, b], axis=1, join="inner").dropna()
    return both.reset_index()


def skill(pairs: pd.DataFrame) -> float:
    """``1 - sum(method) / sum(reference)`` of :func:`paired` rows (NaN when empty or zero)."""
    total = float(pairs["reference"].sum()) if len(pairs) else 0.0
    if total <= 0.0:
        return float("nan")
    return 1.0 - float(pairs["method"].sum()) / total


def skill_per_lead(pairs: pd.DataFrame) -> pd.Series:
    """:func:`skill` per ``lead_time_minutes``."""
    if not len(pairs):
        return pd.Series(dtype="float64")
    return pairs.groupby("lead_time_minutes").apply(skill, include_groups=False)


def skill_per_init(pairs: pd.DataFrame) -> pd.Series:
    """:func:`skill` per ``init_time`` (all leads of the entry pooled)."""
    if not len(pairs):
        return pd.Series(dtype="float64")
    return pairs.groupby("init_time").apply(skill, include_groups=False)


def window(rows: pd.DataFrame, until: pd.Timestamp, span: str | pd.Timedelta) -> pd.DataFrame:
    """Rows initialised in ``(until - span, until]``."""
    start = pd.Timestamp(until) - pd.Timedelta(span)
    return rows[(rows["init_time"] > start) & (rows["init_time"] <= pd.Timestamp(until))]


def entries(pairs: pd.DataFrame) -> int:
    """Number of distinct init times in ``pairs``."""
    return int(pairs["init_time"].nunique()) if len(pairs) else 0


__all__ = ["entries", "paired", "skill", "skill_per_init", "skill_per_lead", "window"]
