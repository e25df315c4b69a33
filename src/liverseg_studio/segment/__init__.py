"""Whole-volume segmentation: the pipeline (:mod:`.pipeline`) and exporters (:mod:`.exporters`).

Qt-free and reused by the CLI (``liverseg segment``) and the studio::

    from liverseg_studio.segment import segment_volume
    result = segment_volume(volume, backend, progress=cb, is_cancelled=flag)
    result.labels, result.stats.liver_ml, result.timings["inference"]
"""

from liverseg_studio.segment.pipeline import ModelInfo, SegmentationResult, model_info, segment_volume

__all__ = ["ModelInfo", "SegmentationResult", "model_info", "segment_volume"]
