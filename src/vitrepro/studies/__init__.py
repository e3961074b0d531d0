"""Studies: collect run summaries into tables (and, later, the paper's figures)."""
