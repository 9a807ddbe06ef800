"""Post-processing shared by the task methods: mask-to-box, NMS, captions and EPOC.

Public API::

    masks_to_boxes(mask, probs, box_type="hbb"|"obb", conf_threshold=0.01,
                   remove_inner=True, new_mask=None) -> (n, 5) | (n, 9) float64
    remove_inner_boxes(boxes) -> keep mask;  box1_in_box2(box1, box2) -> bool
    nms(boxes, scores, iou_threshold=0.5) -> kept indices
    build_caption(pred, shape_hw, region_count, choose) -> str
    epoc_refine(mask, boundary_prob, threshold, area_ratio=0.2) -> uint8 mask
    load_boundary_model(dir) -> BoundaryModel;  boundary_map(model, image) -> (H, W) float32

``masks_to_boxes_reference`` is the straightforward official algorithm, kept as the baseline for
tests and benchmarks only.
"""

from remotesam.postprocess.boxes import (
    box1_in_box2,
    masks_to_boxes,
    masks_to_boxes_reference,
    nms,
    remove_inner_boxes,
)
from remotesam.postprocess.captions import (
    DISTRIBUTION_TEMPLATES,
    EXISTENCE_TEMPLATES,
    REGION_NAMES,
    build_caption,
    fixed_chooser,
    seeded_chooser,
)
from remotesam.postprocess.epoc import (
    COUNTING_EPOC_THRESHOLD,
    DETECTION_EPOC_THRESHOLD,
    EPOC_AREA_RATIO,
    BoundaryModel,
    boundary_map,
    epoc_refine,
    load_boundary_model,
)

__all__ = [
    "COUNTING_EPOC_THRESHOLD",
    "DETECTION_EPOC_THRESHOLD",
    "DISTRIBUTION_TEMPLATES",
    "EPOC_AREA_RATIO",
    "EXISTENCE_TEMPLATES",
    "REGION_NAMES",
    "BoundaryModel",
    "boundary_map",
    "box1_in_box2",
    "build_caption",
    "epoc_refine",
    "fixed_chooser",
    "load_boundary_model",
    "masks_to_boxes",
    "masks_to_boxes_reference",
    "nms",
    "remove_inner_boxes",
    "seeded_chooser",
]
