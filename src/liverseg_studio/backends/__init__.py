"""Segmentation backends.  ``plugin`` registers the built-in ones (onnx, fastai)."""
