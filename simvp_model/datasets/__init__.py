"""Synthetic benchmark datasets generated from data shipped with the package.

Each dataset yields ``(x, y)`` float32 tensors ``(T_in, C, H, W)``, ``(T_out, C, H, W)``,
the sample contract of :class:`simvp_model.engine.DataSplits`.
"""
