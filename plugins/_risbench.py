"""RISBench (Dong et al., "Cross-Modal Bidirectional Interaction Model for Referring Remote
Sensing Image Segmentation", CroBIM, arXiv 2410.08613) for the ``ref`` task (private module).

Release (CC-BY-4.0): https://github.com/HIT-SIRS/CroBIM (Baidu Netdisk link in its README):
52,472 image-language-label triplets, 512x512 images, 26 classes. Its files follow the
LGCE/RefSegRS "phrase list" layout (as RISBench loaders read it)::

    RISBench/img_rgb/<idx>.<ext>          images
    RISBench/mask/<idx>.<ext>             binary masks, 0 / 255
    RISBench/output_phrase_{train,val,test}.txt   "<idx> <expression>" per line

The image suffix is looked up (``.tif``, ``.png``, ``.jpg`` ...): the README does not state it;
third-party loaders of the release read ``img_rgb/<idx>.png`` and ``mask/<idx>.png`` and take
every non-zero mask value as the target (option ``mask_threshold=1``; the default expects 0 / 255
and names the option otherwise). See docs/REAL_FORMATS.md.

Protocol: the test split (CroBIM's tables; RemoteSAM Tables 3 and 8, "test" per the RemoteSAM
author in issue #11), 16,159 expressions of the 26,300 / 10,013 / 16,159 split. Metrics are
the ``ref`` task's official ones (oIoU, mIoU, Pr@0.5..0.9 at ``eval_size``).
"""

from __future__ import annotations

from typing import ClassVar

from remotesam.bench.api.datainfo import DatasetInfo

from ._phrase_refer import PhraseListAdapter

__all__ = ["RISBenchAdapter"]


class RISBenchAdapter(PhraseListAdapter):
    """RISBench in CroBIM's release layout (see the module docstring).

    ``root`` is the ``RISBench`` folder. Options as for
    :class:`~remotesam_plugins._phrase_refer.PhraseListAdapter`.
    """

    name: ClassVar[str] = "risbench"
    default_subdir: ClassVar[str] = "RISBench"
    image_folder: ClassVar[str] = "img_rgb"
    mask_folder: ClassVar[str] = "mask"
    layout: ClassVar[str] = (
        "<root>/                          (e.g. RISBench)\n"
        "  img_rgb/<idx>.png|.tif ...\n"
        "  mask/<idx>.png|.tif ...        (binary, 0 / 255)\n"
        "  output_phrase_<split>.txt      ('<idx> <expression>' per line)\n"
    )
    info: ClassVar[DatasetInfo] = DatasetInfo(
        title="RISBench",
        source=("Dong et al., Cross-Modal Bidirectional Interaction Model for Referring Remote "
                "Sensing Image Segmentation (CroBIM), arXiv 2410.08613; "
                "https://github.com/HIT-SIRS/CroBIM"),
        licence="CC-BY-4.0",
        split="test",
        size=16159,
        layout=("img_rgb/*", "mask/*", "output_phrase_test.txt"),
        how_to_get=("Download RISBench from the Baidu Netdisk link in the CroBIM README "
                    "(github.com/HIT-SIRS/CroBIM) and unpack it so that RISBench/ holds "
                    "img_rgb/, mask/ and output_phrase_{train,val,test}.txt; pass --data-root "
                    "to the folder above RISBench/."),
        counts={},
    )
