"""Compute and speed: FLOPs as the paper counts them, the peak matmul rate, throughput
and the switches that change speed but never results."""
