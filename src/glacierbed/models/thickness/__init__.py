"""The surface-aware thickness network (the default model): input features, network, trainer."""
