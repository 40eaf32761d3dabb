"""Input errors that entry points turn into one `error: ...` line and exit code 2.

Kept apart from `sentisynth.data` (which imports pandas) so that the Hydra glue and `--help` / `--cfg`
start without the data stack.
"""


class DataError(ValueError):
    """Bad or missing input data; the message names the file and the line or column."""


class ConfigError(ValueError):
    """A choice that cannot work or would be silently ignored."""


class RunStopped(RuntimeError):
    """A run that stopped on purpose before its end (a cost cap, a batch file waiting to be run, a server
    that refuses the request): one line saying why and how to go on, exit code `exit_code`, nothing lost."""

    exit_code = 3
