"""Training: SimVP from the catalog's sources (``source``), fine-tuning a checkpoint (``finetune``)
and the Moving MNIST benchmark (``moving_mnist``).

The training loop itself is ``simvp_model.lightning_module.fit``; this package turns stores and
catalog entries into its inputs and writes ``DIR/models/<source>/``.
"""
