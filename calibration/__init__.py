"""Camera calibration and the mapping from any camera to the bundle's camera."""
