"""The names people give what they make: models of the local zoo and personal digit sets.

A name is also a directory name (``$ZOO_HOME/models/NAME``, ``$ZOO_HOME/digits/NAME``) and a field of
a ``TrainSpec`` (the model a run saves, the model it fine-tunes, the set it learns from), so the rules
live here, below everything that checks one.
"""

from __future__ import annotations

import re

from zoo.core.errors import DigitSetError, ModelStoreError

MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
SET_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DEFAULT_SET = "my-digits"


def check_model_name(name: str) -> str:
    """Return ``name`` if it can name a model directory.

    Raises:
        ModelStoreError: it is empty, too long, or has characters other than letters,
            digits, '.', '_' and '-'.
    """
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.fullmatch(name):
        raise ModelStoreError(
            f"model name {name!r} is not allowed: use 1-80 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, e.g. mnist-cnn-1."
        )
    return name


def check_set_name(name: str) -> str:
    """Return ``name`` if it can name a digit set.

    Args:
        name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.

    Returns:
        ``name`` unchanged.

    Raises:
        DigitSetError: empty, too long, or characters other than letters, digits, '.', '_' and '-'.

    Example:
        >>> check_set_name("my-digits")
        'my-digits'
    """
    if not isinstance(name, str) or not SET_NAME_PATTERN.fullmatch(name):
        raise DigitSetError(
            f"digit set name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit, e.g. {DEFAULT_SET}."
        )
    return name
