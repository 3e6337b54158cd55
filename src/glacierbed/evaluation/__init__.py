"""Evaluation: classical baselines, OGGM as a peer, scores against measurements, benchmarks,
the measured table and its cross-validation, figures."""
