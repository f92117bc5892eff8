"""Finding the merchant's products in video frames.

One package per seam, thumbor-style: ``detections.py`` (the one ``Detections`` type), ``base.py`` (the
``Detector`` interface and the null detector), ``catalog.py`` (local features matched against indexed
product photos; the default, no weights), ``torchvision.py`` (torchvision detectors from ``models/``),
``tracking.py`` (detections across frames into product tracks), ``cutout.py`` (GrabCut cut-outs),
``frames.py`` (streaming decode of frames) and ``training.py`` (fine-tuning on synthetic composites).
"""
