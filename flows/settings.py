"""Environment defaults that must be in place before :mod:`prefect` is imported.

Prefect reads its settings from the environment when it is first imported, so
:func:`apply_defaults` runs from ``flows/__init__.py``, before any flow module imports
prefect. Only unset variables are filled in; anything the user exported wins.

Why each default (``../shared/reference/ecosystem.md`` §1–2):

- ``DO_NOT_TRACK=1`` and ``PREFECT_SERVER_ANALYTICS_ENABLED=false``: offline machines
  otherwise log ``Failed to send telemetry`` errors.
- ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=90``: the temporary server of
  ephemeral mode needs ~16 s on a fresh database (migrations), close to the default 20 s.
- ``DASK_LOGGING__DISTRIBUTED=warning``: the ingest flow's in-process Dask cluster logs
  every worker start and stop at INFO through Prefect's console handler (~40 lines a run).
- ``PREFECT_HOME``: Prefect keeps its SQLite database in ``~/.prefect``; when ``HOME`` is
  unset or does not exist (CI containers) the run fails with ``unable to open database
  file``, so it is moved under the data directory instead.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from data_catalog.paths import DataDir, is_url

#: Variables set when absent, with their default values.
ENV_DEFAULTS: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "DASK_LOGGING__DISTRIBUTED": "warning",
}

#: Sub-directory of the data directory used as ``PREFECT_HOME`` when ``HOME`` is unusable.
PREFECT_HOME_SUBDIR = "prefect"


def _home_usable(environ: MutableMapping[str, str]) -> bool:
    home = environ.get("HOME")
    return bool(home) and Path(home).is_dir()


def apply_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Fill in the Prefect environment defaults that are not already set.

    Parameters
    ----------
    environ : MutableMapping[str, str], optional
        Environment to update in place (default ``os.environ``).

    Returns
    -------
    dict[str, str]
        The variables this call set (empty when everything was already set).
    """
    env = os.environ if environ is None else environ
    applied: dict[str, str] = {}
    for name, value in ENV_DEFAULTS.items():
        if name not in env:
            env[name] = applied[name] = value
    if "PREFECT_HOME" not in env and not _home_usable(env):
        root = DataDir.resolve(env.get("NOWCAST_DATA_DIR")).root
        if is_url(root):
            raise ValueError(
                f"HOME={env.get('HOME')!r} is unusable and the data directory {root!r} is a URL; "
                "set PREFECT_HOME to a local directory"
            )
        home = Path(root, PREFECT_HOME_SUBDIR)
        home.mkdir(parents=True, exist_ok=True)
        env["PREFECT_HOME"] = applied["PREFECT_HOME"] = str(home)
    return applied
