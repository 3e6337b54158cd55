"""Simulated glaciers on real terrain: the shallow-ice model, the training set, a synthetic region."""
