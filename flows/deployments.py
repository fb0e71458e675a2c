"""Every deployment, declared once: ``<flow>/<source>`` for each flow and catalog source.

Two ways to run them, both from this one declaration (see ``docs/prefect.md``):

- **serve** (no work pool): ``python -m flows.deployments`` registers all deployments with
  the Prefect API and runs their flow runs as subprocesses of itself;
- **work pool + worker**: ``prefect.yaml`` is *generated* from :func:`deployment_specs`
  (``python -m flows.deployments --write-prefect-yaml prefect.yaml``; a test checks the
  committed file is up to date), then ``prefect --no-prompt deploy --all`` and
  ``prefect worker start --pool local-process``.

Schedules (UTC): ``ingest/<source>`` at minute 0 of every hour and ``forecast/<source>``
five minutes later (minute 5), so each hourly forecast starts from freshly ingested inputs;
``verify/<source>`` at minute 10 scores the issued forecasts whose observations have arrived;
``train-simvp`` and ``evaluate`` run on demand (``prefect deployment run
'train-simvp/mch-radar'``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: Hourly crons: ingest at minute 0, forecast 5 min later, verify 5 min after that.
INGEST_CRON = "0 * * * *"
FORECAST_CRON = "5 * * * *"
VERIFY_CRON = "10 * * * *"  # after the forecast: scores what the last ingest made observable
WORK_POOL = "local-process"
PREFECT_YAML = Path(__file__).resolve().parents[1] / "prefect.yaml"
TAGS = ("simvp-nowcast",)

log = logging.getLogger(__name__)

#: Training that fits the shipped MeteoSwiss sample, three 40-frame events (2015-05-15,
#: 2016-07-11, 2017-01-31): the default leak-free split (70/15/15 of the valid frames with
#: window-long gaps, 6 → 6 frames at 5 min) and the radar defaults (a correction of the
#: Lucas–Kanade nowcast on 64 px crops of the 4 km grid, batches of 8), 12 epochs of 5 steps,
#: capped at 2.5 min on 2 CPU cores.
SAMPLE_TRAINING: dict[str, Any] = {
    "epochs": 12,
    "max_minutes": 2.5,
}

#: Default parameters per source and flow on top of ``{"source": name}``.
SOURCE_PARAMETERS: dict[str, dict[str, dict[str, Any]]] = {
    "mch-radar": {"train-simvp": SAMPLE_TRAINING},
}


@dataclass(frozen=True)
class FlowEntry:
    """One flow that gets a deployment per source.

    Parameters
    ----------
    flow_name : str
        Prefect flow name (the part before ``/`` in deployment names).
    module, function : str
        Where the flow object lives, e.g. ``flows.train`` / ``train_simvp``.
    cron : str or None
        Hourly schedule of its deployments, or None for on-demand only.
    """

    flow_name: str
    module: str
    function: str
    cron: str | None = None

    @property
    def entrypoint(self) -> str:
        """File entrypoint relative to the repository, ``flows/train.py:train_simvp``."""
        return f"{self.module.replace('.', '/')}.py:{self.function}"

    def load(self) -> Any:
        """The Prefect flow object."""
        flow = getattr(importlib.import_module(self.module), self.function)
        if flow.name != self.flow_name:
            raise ValueError(
                f"{self.module}.{self.function} is flow {flow.name!r}, expected {self.flow_name!r}"
            )
        return flow


FLOWS: tuple[FlowEntry, ...] = (
    FlowEntry("ingest", "flows.ingest", "ingest", INGEST_CRON),
    FlowEntry("train-simvp", "flows.train", "train_simvp"),
    FlowEntry("forecast", "flows.forecast", "forecast", FORECAST_CRON),
    FlowEntry("verify", "flows.verify", "verify", VERIFY_CRON),
    FlowEntry("evaluate", "flows.evaluate", "evaluate"),
)


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment ``<flow>/<source>`` with its default parameters and schedule."""

    entry: FlowEntry
    source: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        """``<flow>/<deployment>`` as ``prefect deployment run`` expects it."""
        return f"{self.entry.flow_name}/{self.source}"

    @property
    def cron(self) -> str | None:
        return self.entry.cron


def deployment_specs(sources: Sequence[str] | None = None) -> list[DeploymentSpec]:
    """Deployments of every flow for ``sources`` (default: every catalog source)."""
    from data_catalog.catalog import get_source, list_sources

    names = list(sources) if sources is not None else list_sources()
    if not names:
        raise ValueError("no sources to deploy")
    for name in names:
        get_source(name)  # raises ValueError naming the valid sources
    return [
        DeploymentSpec(
            entry,
            name,
            {"source": name, **SOURCE_PARAMETERS.get(name, {}).get(entry.flow_name, {})},
        )
        for name in names
        for entry in FLOWS
    ]


def build_deployments(sources: Sequence[str] | None = None, schedules: bool = True) -> list[Any]:
    """``RunnerDeployment`` objects for :func:`prefect.serve`.

    Parameters
    ----------
    sources : sequence of str, optional
        Catalog sources (default: all).
    schedules : bool
        Attach the hourly crons; False serves on-demand deployments only (tests).
    """
    from prefect.deployments.runner import EntrypointType

    deployments = []
    for spec in deployment_specs(sources):
        deployments.append(
            spec.entry.load().to_deployment(
                name=spec.source,
                cron=spec.cron if schedules else None,
                parameters=spec.parameters,
                tags=[*TAGS, spec.source],
                description=f"{spec.entry.flow_name} for catalog source {spec.source}",
                # Load the flow by module path in the run subprocess: independent of the cwd.
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments


def prefect_yaml(sources: Sequence[str] | None = None) -> dict[str, Any]:
    """The ``prefect.yaml`` document (work pool ``local-process``) for ``sources``.

    The pull step's ``{{ $PWD }}`` is resolved by Prefect from the environment of the flow
    run (inherited from the worker) when the run starts, so start the worker from the
    repository root (``docs/prefect.md``).
    """
    deployments = []
    for spec in deployment_specs(sources):
        entry: dict[str, Any] = {
            "name": spec.source,
            "description": f"{spec.entry.flow_name} for catalog source {spec.source}",
            "entrypoint": spec.entry.entrypoint,
            "parameters": spec.parameters,
            "tags": [*TAGS, spec.source],
            "work_pool": {"name": WORK_POOL},
        }
        if spec.cron:
            entry["schedules"] = [{"cron": spec.cron, "timezone": "UTC", "active": True}]
        deployments.append(entry)
    return {
        "name": "simvp-nowcast",
        "prefect-version": "3.8.8",
        "build": None,
        "push": None,
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $PWD }}"}}],
        "deployments": deployments,
    }


YAML_HEADER = (
    "# Generated by `python -m flows.deployments --write-prefect-yaml prefect.yaml` from\n"
    "# flows/deployments.py (the one place deployments are declared); do not edit by hand.\n"
    "# Deploy from the repository root: prefect --no-prompt deploy --all (docs/prefect.md).\n"
)


def render_prefect_yaml(sources: Sequence[str] | None = None) -> str:
    """Text of ``prefect.yaml`` (header comment + YAML)."""
    return YAML_HEADER + yaml.safe_dump(prefect_yaml(sources), sort_keys=False, width=100)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m flows.deployments``: serve every deployment, or list / write prefect.yaml."""
    parser = argparse.ArgumentParser(
        prog="python -m flows.deployments",
        description="Serve all <flow>/<source> deployments (needs PREFECT_API_URL of a server).",
    )
    parser.add_argument("--sources", nargs="+", help="catalog sources (default: all)")
    parser.add_argument("--no-schedules", action="store_true", help="serve without crons")
    parser.add_argument("--limit", type=int, default=None, help="max concurrent flow runs")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="print deployment names and exit")
    group.add_argument("--write-prefect-yaml", metavar="PATH", help="write prefect.yaml and exit")
    args = parser.parse_args(argv)
    if args.list:
        for spec in deployment_specs(args.sources):
            print(f"{spec.full_name}\t{spec.cron or 'on demand'}")
        return 0
    if args.write_prefect_yaml:
        Path(args.write_prefect_yaml).write_text(render_prefect_yaml(args.sources))
        print(f"wrote {args.write_prefect_yaml}")
        return 0
    from prefect import serve

    serve(*build_deployments(args.sources, schedules=not args.no_schedules), limit=args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
