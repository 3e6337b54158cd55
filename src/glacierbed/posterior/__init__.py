"""After the model: the physics posterior and the calibration on measured thickness."""
