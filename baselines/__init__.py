"""Non-neural baselines. Each declares whether it reads order (``reads_order``): MostPop, recent
popularity, ItemKNN, BPR-MF, EASE and RP3beta see a user's history as a set; sequential rules (Markov)
and session-kNN (V-SKNN, STAN) read its order and are compared as the "non-neural sequential" family."""

from baselines.bprmf import BPRMF
from baselines.ease import EASE
from baselines.itemknn import ItemKNN
from baselines.pop import MostPop
from baselines.recentpop import RecentPop
from baselines.rp3beta import RP3Beta
from baselines.rules import SequentialRules
from baselines.sknn import SessionKNN

__all__ = ["BPRMF", "EASE", "ItemKNN", "MostPop", "RecentPop", "RP3Beta", "SequentialRules", "SessionKNN"]
