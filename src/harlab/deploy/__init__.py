"""Shipping a trained model: portable bundles (safetensors + JSON), ONNX export."""
