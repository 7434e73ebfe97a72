"""Judging and showing answers: the final answer of a turn, mathematical equivalence (math-verify under a
deadline), votes over samples, and LaTeX rendered as readable Unicode.
"""
