"""PyTorch architectures and the ONNX bundle exporter (the `export` extra: torch, onnx)."""
