"""Admission: every check a run must pass before it exists, the same whichever executor runs it.

``admit`` checks who starts it, the spec, its backend, the host's limits judged from what the data
holds, a visitor's data-source rules, the MNIST file's headers, fine-tuning and fonts; it writes
nothing. The caps on live runs (per person, per host) are not admission's: they are checked and
reserved where runs are recorded, in the run store's ``create_run``, in one transaction (app servers
share no memory). ``start`` is what a page or the CLI calls for Start: admission, then the executor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.core.hosting import HostingConfig, User, check_may_create, load_config
from zoo.core.spec import TrainSpec
from zoo.execution.devices import detect_device
from zoo.execution.records import AdmittedRun
from zoo.ml.backend import check_installed
from zoo.ml.data import check_mnist_source, check_visitor_data_source
from zoo.ml.printed import check_fonts
from zoo.ml.training import check_fine_tuning, check_limits

if TYPE_CHECKING:
    from zoo.execution.executor import Executor


def admit(spec: TrainSpec, by: User, config: HostingConfig | None = None) -> AdmittedRun:
    """Check everything about a run of ``by`` for ``spec`` before anything is recorded or started.

    Args:
        spec: what to train; validated here (its ``backend`` made concrete with ``resolved``).
        by: who starts it and will own it (``hosting.LOCAL_USER`` on one's own machine).
        config: the hosting configuration (default: read now).

    Returns:
        The admitted run: the resolved spec, its owner, its device and the host's limits.

    Raises:
        ZooError: the spec is invalid, its backend is not installed, the MNIST file it names is
            missing or malformed, its base model or digit set cannot be fine-tuned, a ``printed`` run
            finds no fonts, or the hosting configuration is invalid.
        PermissionDenied: ``by`` is not signed in, the spec asks more than the host's limits, or
            names a server file a visitor may not use.

    Example:
        >>> admitted = admit(TrainSpec.binary(dataset="spiral"), LOCAL_USER)  # doctest: +SKIP
        >>> admitted.device
        'cpu'
    """
    check_may_create(by, "train a model")
    spec = spec.resolved()
    spec.validate()
    check_installed(spec.backend)  # else no worker could start, and the run would wait for one in vain
    config = config or load_config()
    if config.hosted and not by.is_admin:  # first: nothing of a file a visitor may not name is read
        check_visitor_data_source(spec.mnist_source, by, config)
    # Judged from what the data holds: a bad file (the spec's or ZOO_MNIST) is refused here, from its
    # arrays' headers, before a run exists; and so are labels other than 0-9 (only they are read).
    check_limits(spec, config.limits)
    if spec.kind == "cnn" and spec.mnist_source != "embedded":
        check_mnist_source(None if spec.mnist_source == "auto" else spec.mnist_source)
    check_fine_tuning(spec, by)  # so is a missing base model, or a digit set unfit or not theirs
    if spec.printed:
        check_fonts()  # and a machine without fonts to type printed digits in
    device = "cpu" if spec.device == "cpu" else detect_device()
    return AdmittedRun(spec, by, device, config.limits)


def start(spec: TrainSpec, *, by: User, executor: Executor) -> str:
    """Start a run: admit it, then hand it to ``executor``, which records it queued and arranges a
    worker. Returns its id at once (the run trains in a worker, never in the caller).

    Raises:
        ZooError: as ``admit`` and ``Executor.submit`` raise (nothing is recorded then).

    Example:
        >>> run_id = start(TrainSpec.binary(num_epochs=50), by=LOCAL_USER, executor=open_executor())
    """
    return executor.submit(admit(spec, by))
