"""The maths: data, augmentation, architectures, Keras backends, training, evaluation, inference and
the Learn page's reference formulas.
"""
