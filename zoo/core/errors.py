"""Errors that Zoo Studio raises for bad input; each message says what was wrong and how to fix it."""


class ZooError(ValueError):
    """Bad input or state a user can fix; the message is one sentence meant for them."""


class DataError(ZooError):
    """A dataset file or dataset parameter is unusable."""


class ModelStoreError(ZooError):
    """A model directory in the local zoo is missing, corrupt or foreign."""


class DigitSetError(ZooError):
    """A personal digit set, or a digit or label for one, is unusable."""


class RunError(ZooError):
    """A run id or run request is unusable."""


class StorageError(ZooError):
    """The zoo's directory or its run store cannot be opened, read or written; the message names the fix."""


class StoreLocked(StorageError):
    """Another process held the run store's write lock for longer than a write waits; the write can be
    tried again when it lets go (nothing is wrong with the store)."""


class StoreUnreachable(StoreLocked):
    """The run store's server could not be reached, or cut the connection mid-query (a restart, a
    failover); like a lock, the read or write can be tried again, on a new connection."""


class SettingsError(ZooError):
    """A setting (a ``ZOO_*`` variable or a line of the configuration file) is not what it takes."""
