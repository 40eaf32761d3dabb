"""Downstream classifiers, teachers and guidance models behind one small interface."""

from sentisynth.classifiers.base import TextClassifier
from sentisynth.classifiers.tfidf import TfidfClassifier

__all__ = ["TextClassifier", "TfidfClassifier"]
