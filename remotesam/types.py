"""Result types returned by :class:`remotesam.RemoteSAM`'s task methods.

Every task method returns one of these frozen dataclasses; no flag changes the type or the
number of values that come back.

Conventions, for every type here:

* Images are indexed ``(row, col) = (y, x)``; ``H, W`` are the *original* image size given to the
  method, ``S`` is the network input size (896 for the official model).
* Boxes are absolute pixel coordinates in the original image. Horizontal boxes are ``xyxy``
  ``[x1, y1, x2, y2]`` with the right and bottom edges **exclusive** (one past the last pixel), as
  the official ``M2B`` produces them from OpenCV component statistics. Oriented boxes are 4-point
  polygons ``[x0, y0, x1, y1, x2, y2, x3, y3]`` (``cv2.boxPoints`` order, truncated to int).
* Masks are ``uint8`` 0/1; probabilities are ``float32`` foreground probabilities
  (``softmax(logits)[:, 1]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Caption",
    "Counts",
    "Detections",
    "Grounding",
    "MultiClassResult",
    "MultiLabelResult",
    "ReferringMask",
    "SemanticMasks",
]


@dataclass(frozen=True, eq=False)
class ReferringMask:
    """Output of ``referring_seg``.

    Attributes:
        mask: ``(H, W)`` uint8 0/1, argmax of the logits resized to the original size with legacy
            nearest interpolation (official behaviour).
        prob: ``(H, W)`` float32 foreground probability, nearest-resized the same way.
        mask_net: ``(S, S)`` uint8 0/1, the argmax at network resolution (REF/SEG evaluation
            protocol computes IoU here).
        prob_net: ``(S, S)`` float32 foreground probability at network resolution.
    """

    mask: np.ndarray
    prob: np.ndarray
    mask_net: np.ndarray
    prob_net: np.ndarray


@dataclass(frozen=True, eq=False)
class SemanticMasks:
    """Output of ``semantic_seg``: one referring mask per class prompt.

    Attributes:
        classnames: the K class names, in the order given.
        masks: ``(K, H, W)`` uint8 0/1 per-class masks at the original size.
        probs: ``(K, H, W)`` float32 per-class foreground probabilities at the original size.
        label_map: ``(H, W)`` int64, 0 = background, ``k + 1`` = ``classnames[k]``; where class
            masks overlap the **higher class index wins** (official ``np.maximum.reduce``).
        label_map_net: ``(S, S)`` int64, the same merge at network resolution.
    """

    classnames: tuple[str, ...]
    masks: np.ndarray
    probs: np.ndarray
    label_map: np.ndarray
    label_map_net: np.ndarray


@dataclass(frozen=True, eq=False)
class Detections:
    """Output of ``detection``: boxes of all classes, flat.

    Attributes:
        classnames: the K class names queried, in the order given.
        box_type: ``"hbb"`` (``boxes`` is ``(N, 4)`` xyxy) or ``"obb"`` (``(N, 8)`` polygon).
        boxes: ``(N, 4)`` or ``(N, 8)`` float64 absolute pixel coordinates.
        scores: ``(N,)`` float64 confidence = mean foreground probability of the component.
        labels: ``(N,)`` int64 index into ``classnames``.

    Within a class, boxes are ordered by descending score (official post-NMS order); classes
    appear in the order of ``classnames``. A class without boxes simply has no rows (the official
    wrapper returns ``None`` for it).
    """

    classnames: tuple[str, ...]
    box_type: str
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def for_class(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Boxes and scores of one class (possibly empty arrays)."""
        try:
            k = self.classnames.index(name)
        except ValueError:
            raise KeyError(
                f"class {name!r} was not queried; queried: {list(self.classnames)}"
            ) from None
        sel = self.labels == k
        return self.boxes[sel], self.scores[sel]

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


@dataclass(frozen=True, eq=False)
class Grounding:
    """Output of ``visual_grounding``.

    Attributes:
        box: ``(4,)`` float64 xyxy, the union ``[min x1, min y1, max x2, max y2]`` of the
            referring mask's component boxes, or ``None`` when the mask is empty.
        score: mean confidence of the components that formed the box (``nan`` when ``box`` is None).
    """

    box: np.ndarray | None
    score: float


@dataclass(frozen=True, eq=False)
class MultiLabelResult:
    """Output of ``multi_label_cls``.

    Attributes:
        classnames: the K class names.
        scores: ``(K,)`` float64, ``factor*max + (1-factor)*mean`` of the class probability map at
            network resolution (official factor 0.5).
        labels: the selected class names (``score > threshold``), in ``classnames`` order.
    """

    classnames: tuple[str, ...]
    scores: np.ndarray
    labels: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class MultiClassResult:
    """Output of ``multi_class_cls``.

    Attributes:
        classnames: the K class names.
        scores: ``(K,)`` float64 (official factor 1.0: pure max of the probability map).
        label: the best class, or ``None`` when the best score is below the floor (0.5).
    """

    classnames: tuple[str, ...]
    scores: np.ndarray
    label: str | None


@dataclass(frozen=True, eq=False)
class Caption:
    """Output of ``captioning``.

    Attributes:
        text: the rule-based caption (existence sentence + distribution sentences).
        detections: the detections the caption was built from.
    """

    text: str
    detections: Detections


@dataclass(frozen=True, eq=False)
class Counts:
    """Output of ``counting``.

    Attributes:
        classnames: the K class names.
        counts: mapping class name -> number of boxes kept.
    """

    classnames: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)
