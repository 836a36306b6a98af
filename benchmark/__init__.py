"""seqrec-bench: a research benchmark for sequential recommendation."""

import os

# OpenMP threads that sleep at barriers instead of spinning: on a shared or oversubscribed machine
# (several runs on few cores) spinning threads made small training steps 10-20x slower. Must be
# set before torch loads its OpenMP runtime; OMP_WAIT_POLICY=active in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
