"""One training run: the Lightning module, its schedule and step budget, callbacks,
checkpoints and the signals that save them, and the transfers that follow pre-training."""
