"""Zoo Studio: train, evaluate, explain, draw and share the two teaching models.

The package imports nothing heavy at import time: TensorFlow/Keras are imported lazily
inside the functions that need them, so pages and the CLI start fast.
"""

__version__ = "0.1.0"
