"""ONNX Runtime side of the tool: loading exported generators, windowing images, and re-synthesising
grain inside filled holes (numpy/OpenCV). Never imports torch."""
