"""seqrec-bench: a research benchmark for sequential recommendation."""

__version__ = "0.1.0"
