"""The one error type that the CLI turns into a one-line message and exit code 2."""


class ConfigError(ValueError):
    """A config value that cannot work, named by its full key (e.g. ``trainer.batch_size``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def require(ok: bool, key: str, message: str) -> None:
    """Raise ConfigError(key, message) unless ok."""
    if not ok:
        raise ConfigError(key, message)
