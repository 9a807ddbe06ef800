"""RefSegRS (Yuan et al., "RRSIS: Referring Remote Sensing Image Segmentation", TGRS 2024;
the LGCE paper) for the ``ref`` task (private module).

Release (CC-BY-4.0): https://huggingface.co/datasets/JessicaYuan/RefSegRS, linked from
https://github.com/zhu-xlab/rrsis. Layout as released::

    RefSegRS/images/<idx>.tif            512x512 RGB tiles (SkyScapes)
    RefSegRS/masks/<idx>.tif             binary masks, 0 / 255
    RefSegRS/output_phrase_{train,val,test}.txt   "<idx> <expression>" per line

Protocol: the RemoteSAM paper reports RefSegRS in Table 10 without naming the split; the LGCE
release's test split (1,817 expressions) is the default, as in LGCE, CroBIM and RMSIN's tables.
Metrics are the ``ref`` task's official ones (oIoU, mIoU, Pr@0.5..0.9 at ``eval_size``;
LGCE's ``evaluate`` computes the same IoU = I/U with 0 for an empty union, mIoU = mean,
oIoU = cum I / cum U).
"""

from __future__ import annotations

from typing import ClassVar

from remotesam.bench.api.datainfo import DatasetInfo

from ._phrase_refer import PhraseListAdapter

__all__ = ["RefSegRSAdapter"]


class RefSegRSAdapter(PhraseListAdapter):
    """RefSegRS in LGCE's release layout (see the module docstring).

    ``root`` is the ``RefSegRS`` folder. Options as for
    :class:`~remotesam_plugins._phrase_refer.PhraseListAdapter`.
    """

    name: ClassVar[str] = "refsegrs"
    default_subdir: ClassVar[str] = "RefSegRS"
    image_folder: ClassVar[str] = "images"
    mask_folder: ClassVar[str] = "masks"
    layout: ClassVar[str] = (
        "<root>/                          (e.g. RefSegRS)\n"
        "  images/<idx>.tif ...\n"
        "  masks/<idx>.tif ...            (binary, 0 / 255)\n"
        "  output_phrase_<split>.txt      ('<idx> <expression>' per line)\n"
    )
    info: ClassVar[DatasetInfo] = DatasetInfo(
        title="RefSegRS",
        source=("Yuan et al., RRSIS: Referring Remote Sensing Image Segmentation, TGRS 2024 "
                "(arXiv 2306.08625); https://github.com/zhu-xlab/rrsis; "
                "https://huggingface.co/datasets/JessicaYuan/RefSegRS"),
        licence="CC-BY-4.0",
        split="test",
        size=1817,
        layout=("images/*.tif", "masks/*.tif", "output_phrase_test.txt"),
        how_to_get=("Download the RefSegRS release from the Hugging Face dataset "
                    "JessicaYuan/RefSegRS and unpack it so that RefSegRS/ holds images/, "
                    "masks/ and output_phrase_{train,val,test}.txt; pass --data-root to the "
                    "folder above RefSegRS/."),
        counts={},
    )
