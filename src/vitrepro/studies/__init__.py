"""A study: its grid of runs, the pool that runs them, their records collected into tables,
and the figures beside the paper's."""
