"""Per-glacier work: the model store, glacier directories and tasks, estimate, outputs, maps."""
