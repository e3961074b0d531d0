"""Evaluators that run on a frozen representation."""
