"""Dataset formats other than COCO and YOLO: one module per format, a reader and a writer."""
