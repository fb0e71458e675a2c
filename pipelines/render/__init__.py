"""Cartopy maps and animations of forecasts, fully offline.

- :mod:`pipelines.render.basemap`: coastlines and borders from the shipped Natural Earth files.
- :mod:`pipelines.render.colours`: colour scale per variable kind (registry).
- :mod:`pipelines.render.maps`: multi-panel PNG (observed inputs + forecast leads).
- :mod:`pipelines.render.animation`: GIF over lead times.
"""
