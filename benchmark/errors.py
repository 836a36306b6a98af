"""User-facing errors: one clear line, non-zero exit, no traceback from deep inside a library."""


class BenchmarkError(Exception):
    """Bad input (config, data file, combination of settings). The message names the culprit."""


class DataError(BenchmarkError):
    """A dataset file is missing, malformed, or empty after filtering."""


class ConfigError(BenchmarkError):
    """A configuration key has an impossible value or combination."""
