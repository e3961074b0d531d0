"""The embedded procedural datasets that stand in for JFT-like pre-training data."""
