"""ONNX export, quantisation, parity checks and the torch-free runtime."""
