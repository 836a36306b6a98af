"""Sequence models: encoders composed with a next-item head; see sequential.py."""

from benchmark.models.base import Batch, Recommender
from benchmark.models.sequential import SequentialRecommender

__all__ = ["Batch", "Recommender", "SequentialRecommender"]
