"""What a Vision Transformer learns (Section 4.5, Appendix D): embedding filters, position
embedding similarity, mean attention distance and attention rollout."""
