"""ONNX Runtime side of the tool: loading exported generators and windowing images (never imports torch)."""
