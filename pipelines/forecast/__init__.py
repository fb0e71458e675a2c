"""Model → forecast Zarr: input selection, prediction, the forecast store and its exports.

- :mod:`pipelines.forecast.store`: the forecast-store layout and its idempotent, lock-protected
  per-``init_time`` writes (:func:`~pipelines.forecast.store.write_forecast`).
- :mod:`pipelines.forecast.run`: :func:`~pipelines.forecast.run.run_forecast`, one forecast end to
  end (latest inputs at or before the init time, staleness checks, predict, write, render).
- :mod:`pipelines.forecast.export`: WeatherBench2 naming (``time``, ``prediction_timedelta``).
"""
