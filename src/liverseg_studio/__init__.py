"""LiverSeg Studio: offline liver and liver-tumour segmentation of abdominal CT."""

__version__ = "0.1.0"
