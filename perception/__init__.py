"""Sparse-CNN lidar vehicle detector (SECOND backbone, CenterPoint head): a pure library.

The detector CROA relies on (docs/perception.md). Modules, in data-path order:
``voxelize`` (cloud -> voxels), ``backbone`` (spconv 3D backbone and its dense ablation),
``model`` (BEV neck and centre head), ``postprocess`` (peaks -> ``Detections``), ``detect``
(the batch entry point), ``checkpoint`` (model files); training: ``dataset`` (simulator format),
``augment``, ``targets``, ``losses``, ``train``, ``provenance``; evaluation: ``iou``, ``ap``,
``evaluate``; files: ``cloud_io``; ``synthetic`` writes small stand-in datasets.

What a node or server calls::

    from perception.checkpoint import load_detector
    from perception.detect import detect
    model = load_detector("models/detector.pt", device="auto")
    detections = detect(model, [cloud])  # list[Detections]: boxes [K, 7], labels, scores

Importing this package imports nothing heavy; torch and spconv load with ``perception.model``.
"""
