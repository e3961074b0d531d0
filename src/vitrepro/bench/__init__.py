"""``make bench`` / ``python -m vitrepro.bench``.

One process measures, each against a baseline measured in the same run (several interleaved
repetitions, median), and writes one JSON record:

- ``training``: the project's Lightning path (``LitClassifier`` + ``pl.Trainer``) against a
  bare PyTorch loop on the same model, batch, optimiser, precision and clipping; model FLOPs
  utilisation (3 x forward FLOPs x images/s, the paper's Table 6 accounting, over ``matmul``'s
  measured dense matmul rate at the same dtype);
- ``matmul``: this machine's dense matmul FLOP/s per dtype, the denominator of MFU;
- ``data``: shards -> decode -> Inception crop -> flip -> tensor per worker against torchvision
  ImageFolder + PIL (``vitrepro.bench.decode``), and against the training rate;
- ``fewshot``: the batched closed-form few-shot solve (Section 4.1) against one least-squares
  solve per (shots, seed) problem, checked to give the same accuracies;
- ``memory``: peak resident set size and, on a GPU, peak allocated GPU memory.
"""
