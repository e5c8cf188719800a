"""Supervision's own clock in a long-lived process: a daemon thread that sweeps an executor's runs
(``Executor.supervise``) every few seconds, so a run whose worker died or hung is failed although
nobody reads it, and no read ever has to.

Where supervision runs: this thread in the app server (one per server, watching the executor of the
ZOO_HOME the pages use: ``zoo.app.ui``); the CLI while it follows a run and ``executor.wait``, each in
its own loop; the local pool's waiting workers (``zoo.execution.worker``); and ``python -m zoo runs``
once before it lists. Tests call ``executor.supervise()`` directly.
"""

from __future__ import annotations

import logging
import threading

from zoo.core.errors import ZooError
from zoo.execution.executor import SUPERVISE_SECONDS, Executor

logger = logging.getLogger(__name__)


class Supervisor:
    """Sweeps the executor it watches every ``every`` seconds on a daemon thread, until stopped.

    Example:
        >>> supervisor = Supervisor(every=2.0)
        >>> supervisor.watch(open_executor())  # starts the thread on the first call
        >>> supervisor.stop()
    """

    def __init__(self, every: float = SUPERVISE_SECONDS) -> None:
        self.every = every
        self._executor: Executor | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failing: str | None = None  # why the last sweep failed; None when it worked

    def watch(self, executor: Executor) -> None:
        """Sweep ``executor`` from now on (instead of the one watched before), starting the thread
        if it is not running."""
        with self._lock:
            self._executor = executor
            if self._thread is None or not self._thread.is_alive():
                self._stopped.clear()
                self._thread = threading.Thread(
                    target=self._sweep_until_stopped, name="zoo-supervisor", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Stop sweeping (the thread ends within one period)."""
        self._stopped.set()

    def _sweep_until_stopped(self) -> None:
        while not self._stopped.wait(self.every):
            executor = self._executor
            if executor is None:
                continue
            try:
                executor.supervise()
            except (ZooError, OSError) as error:  # the store is unusable now: the pages say so; try again
                if str(error) != self._failing:  # once an outage (or a new reason), not every sweep
                    logger.warning("supervision sweep failed: %s", error)
                    self._failing = str(error)
                continue
            if self._failing is not None:
                logger.info("supervision sweeps work again")
                self._failing = None
