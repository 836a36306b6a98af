"""Data pipeline: native-format readers -> interactions -> preprocessing -> protocol split."""

from benchmark.data.preprocess import PreprocessConfig, Prepared, preprocess
from benchmark.data.readers import read_interactions, READERS
from benchmark.data.split import EvalSet, Sequences, SplitData, leave_one_out

__all__ = [
    "PreprocessConfig",
    "Prepared",
    "preprocess",
    "read_interactions",
    "READERS",
    "EvalSet",
    "Sequences",
    "SplitData",
    "leave_one_out",
]
