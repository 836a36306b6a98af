"""User-facing errors: one clear line, non-zero exit, no traceback from deep inside a library."""


class BenchmarkError(Exception):
    """Bad input (config, data file, combination of settings). The message names the culprit."""


class DataError(BenchmarkError):
    """A dataset file is missing, malformed, or empty after filtering."""


class ConfigError(BenchmarkError):
    """A configuration key has an impossible value or combination."""


def one_line_parser_class():
    """argparse.ArgumentParser whose usage errors are one line (``PROG: error: ... (see PROG --help)``,
    exit code 2) instead of the usage block followed by the error."""
    import argparse
    import sys

    class OneLineParser(argparse.ArgumentParser):
        def error(self, message: str):  # type: ignore[override]
            print(f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr)
            sys.exit(2)

    return OneLineParser
