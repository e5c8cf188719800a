"""Where artifacts are kept: the local zoo of trained models and the personal digit sets."""
