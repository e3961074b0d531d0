"""What a run leaves behind: its record (``summary.json``), learning curves, phase
timings, the loggers and the W&B artifacts."""
