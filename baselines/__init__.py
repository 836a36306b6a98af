"""Non-sequential baselines: they see a user's history as a set, never its order."""

from baselines.bprmf import BPRMF
from baselines.ease import EASE
from baselines.itemknn import ItemKNN
from baselines.pop import MostPop

__all__ = ["BPRMF", "EASE", "ItemKNN", "MostPop"]
