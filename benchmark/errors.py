"""User-facing errors: one clear line, non-zero exit, no traceback from deep inside a library."""

import argparse
import sys


class BenchmarkError(Exception):
    """Bad input (config, data file, combination of settings). The message names the culprit."""


class DataError(BenchmarkError):
    """A dataset file is missing, malformed, or empty after filtering."""


class ConfigError(BenchmarkError):
    """A configuration key has an impossible value or combination."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (``PROG: error: ... (see PROG --help)``, exit
    code 2) instead of the usage block followed by the error."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)
