"""SimVP as a forecasting method: the network wrapped for physical fields (``simvp``), the base
nowcasts it can correct (``base_nowcasts``: persistence, Lucas–Kanade, …), resampling between the
source's grid and step and the model's (``resample``) and the shipped pretrained models
(``pretrained``).
"""
