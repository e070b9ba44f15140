"""The one exception every configuration problem is reported with."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration value that cannot be used, named by its dotted key.

    The key is the path an operator would search for in their file, e.g.
    ``paths./users/**.cache-control.max-age``, so start-up failures point at the
    line to fix instead of at our code.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(key, message)
        self.key = key
        self.message = message

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"

    def with_hint(self, hint: str) -> ConfigError:
        """The same error with a note on where the value came from."""
        return ConfigError(self.key, f"{self.message} ({hint})")

    def renamed(self, key: str) -> ConfigError:
        """The same error reported under the key the operator actually wrote."""
        return ConfigError(key, self.message)
