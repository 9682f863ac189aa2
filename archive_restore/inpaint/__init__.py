"""PyTorch side: generator/discriminator definitions, training data, losses, training loop, export.

Imported only by the ``train`` and ``export-onnx`` commands (and tests); the restore path
never imports this package.
"""
