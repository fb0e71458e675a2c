"""Prefect flows on top of ``pipelines`` and ``simvp_model``: the only package importing prefect.

Flows (names as Prefect shows them; deployments are ``<flow>/<source>``):

- ``ingest`` (:mod:`flows.ingest`): catalog source files → observation store.
- ``train-simvp`` (:mod:`flows.train`): observation store → SimVP checkpoint.
- ``forecast`` (:mod:`flows.forecast`): checkpoint + latest inputs → forecast store + map.
- ``evaluate`` (:mod:`flows.evaluate`): checkpoint vs persistence on the test period.
- ``nowcast-pipeline`` (:mod:`flows.pipeline`): all of the above in one run; ``make demo``
  runs it in Prefect's ephemeral mode through :mod:`flows.demo`.

Every task in :mod:`flows.tasks` wraps one function of ``pipelines``; deployments and
schedules are declared once in :mod:`flows.deployments`. Environment defaults Prefect needs
offline are applied here, before any submodule imports prefect (:mod:`flows.settings`), and
so is the allocator tuning every process that runs flows gets
(:func:`simvp_model.allocator.tune_glibc_malloc`).
"""

from flows.settings import apply_defaults
from simvp_model.allocator import tune_glibc_malloc

apply_defaults()
tune_glibc_malloc()
