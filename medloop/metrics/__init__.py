"""Measures both sides of MedLoop use: text similarity of reports and box overlap and matching.

Neutral ground: numpy and scipy only, no Django, no torch and no app of this project, so the
labels side (:mod:`annotations.agreement`: agreement between readers) and the loop side
(:mod:`active_learning.ml`: model evaluation, uncertainty) read one definition of each. An
import contract (``.importlinter``) keeps it so.

- :mod:`medloop.metrics.text`: report tokens, longest common subsequence, ROUGE-L F1, word edit
  distance.
- :mod:`medloop.metrics.boxes`: IoU matrices (corner or corner-and-size boxes), greedy and optimal
  one-to-one matching on IoU.
"""
