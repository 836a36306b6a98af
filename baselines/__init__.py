"""Non-sequential baselines: they see a user's history as a set, never its order."""

from baselines.pop import MostPop

__all__ = ["MostPop"]
