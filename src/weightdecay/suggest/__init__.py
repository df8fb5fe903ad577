"""How close a predicted weight decay comes to a grid's best: the scoring of ``weightdecay suggest`` and of the
literature's rules against ground-truth sweeps (docs/results.md, "Claim 9")."""

from weightdecay.suggest.scoring import Column, Score, score, summarize

__all__ = ["Column", "Score", "score", "summarize"]
