"""The recipe for grasprt's reference models: expert, DAgger controller, composited-data
segmenter. Training is not the product (the runtime never trains); this is how the
default bundle in models/reference was made, rerunnable from a clean checkout."""
