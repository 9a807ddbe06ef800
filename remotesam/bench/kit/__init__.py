"""Helpers for task-plugin authors: file checks, options, masks, images.

Everything here is public, typed and stable; the built-in plugins use the same functions.
Errors about dataset files are :class:`~remotesam.bench.api.DatasetError` (re-exported here)
whose message names the file, the field, what was expected and what to do.

Submodules:

* :mod:`remotesam.bench.kit.files`: :func:`require_dir`, :func:`require_file` (missing paths
  with the expected layout), :func:`layout_error`, :func:`image_files`, :func:`regular_files`
  (regular files only, never a FIFO), :func:`is_regular_file`, :func:`member_path` (annotation file
  names kept inside their folder), :func:`read_text`,
  :func:`read_json`, :func:`check_images_exist`;
* :mod:`remotesam.bench.kit.options`: :func:`check_options`, :func:`parse_bool_option`,
  :func:`positive_int_option`, :func:`as_str_list`, :func:`option_path`,
  :func:`check_score_lengths`, :func:`sample_dataset_classes`;
* :mod:`remotesam.bench.kit.masks`: COCO RLE :func:`mask_to_rle` / :func:`rle_to_mask`,
  :func:`segmentation_to_rle` (polygons / RLE), :func:`resize_nearest` and
  :func:`rle_resize_nearest` (PIL nearest, as the official evaluation), :func:`rle_inter_union`
  and :func:`mask_iou`;
* :mod:`remotesam.bench.kit.images`: :func:`load_image` (RGB uint8), :func:`image_size`.

Example (a dataset adapter's constructor and a ``score``)::

    from remotesam.bench.kit import check_options, require_dir, read_json, check_score_lengths

    root = require_dir(self.root / "images", "mydata", self.layout)
    check_options("mydata", self.options, {"ann_file"})
"""

from __future__ import annotations

from remotesam.bench.api import DatasetError

from .files import (
    IMAGE_EXTENSIONS,
    check_images_exist,
    image_files,
    is_regular_file,
    layout_error,
    member_path,
    read_json,
    read_text,
    regular_files,
    require_dir,
    require_file,
)
from .images import image_size, load_image
from .masks import (
    mask_iou,
    mask_to_rle,
    resize_nearest,
    rle_inter_union,
    rle_resize_nearest,
    rle_to_mask,
    segmentation_to_rle,
)
from .options import (
    as_str_list,
    check_options,
    check_score_lengths,
    option_path,
    parse_bool_option,
    positive_int_option,
    sample_dataset_classes,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "DatasetError",
    "as_str_list",
    "check_images_exist",
    "check_options",
    "check_score_lengths",
    "image_files",
    "image_size",
    "is_regular_file",
    "layout_error",
    "load_image",
    "mask_iou",
    "mask_to_rle",
    "member_path",
    "option_path",
    "parse_bool_option",
    "positive_int_option",
    "read_json",
    "read_text",
    "regular_files",
    "require_dir",
    "require_file",
    "resize_nearest",
    "rle_inter_union",
    "rle_resize_nearest",
    "rle_to_mask",
    "sample_dataset_classes",
    "segmentation_to_rle",
]
