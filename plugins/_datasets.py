"""Provenance and layout of the built-in tasks' datasets (:class:`DatasetInfo` per adapter).

Facts from the datasets' papers and download pages and from the formats the official
RemoteSAM loaders read (see each adapter's ``layout``). Sizes marked "unverified" in the
project's dataset notes are given as the owners quote them. ``layout`` entries are globs
relative to the adapter's root; ``a | b`` means either path satisfies the entry.
"""

from __future__ import annotations

from remotesam.bench.api.datainfo import DatasetInfo

__all__ = ["DATASET_INFO"]

_DOTA_SRC = ("Ding et al., TPAMI 2021 (DOTA-v2.0), https://captain-whu.github.io/DOTA/dataset.html")
_DIOR_SRC = ("Li et al., ISPRS J. 2020 (DIOR), arXiv:1909.00133; download links on the authors' "
             "page (Google Drive / Baidu)")

DATASET_INFO: dict[str, DatasetInfo] = {
    "rrsisd": DatasetInfo(
        title="RRSIS-D",
        source="Liu et al., CVPR 2024 (RMSIN), https://github.com/Lsan2401/RMSIN",
        licence="none stated",
        split="test",
        size=3481,
        layout=("rrsisd/refs(unc).p", "rrsisd/instances.json", "images/rrsisd/JPEGImages/*.jpg"),
        how_to_get=(
            "download the RRSIS-D folder linked from the RMSIN README (Google Drive "
            "1Xqi3Am2Vgm4a5tHqiV9tfaqKNovcuK3A or Baidu, code sjoe) and unpack it so that "
            "DATA_ROOT/rrsisd/refs(unc).p and DATA_ROOT/images/rrsisd/JPEGImages/ exist"
        ),
    ),
    "remotesam270k": DatasetInfo(
        title="RemoteSAM-270K",
        source=("Yao et al., 2025 (RemoteSAM), "
                "https://huggingface.co/datasets/1e12Leon/RemoteSAM_270K"),
        licence="CC-BY-NC-4.0",
        split="train",
        size=None,
        layout=("refs(unc)_RemoteSAM.p | refs(unc).p", "instances.json", "JPEGImages/*"),
        how_to_get=(
            "download the dataset repository 1e12Leon/RemoteSAM_270K from the Hugging Face "
            "Hub (about 184 GB) into DATA_ROOT/RemoteSAM-270K"
        ),
    ),
    "isaid": DatasetInfo(
        title="iSAID",
        source=(
            "Waqas Zamir et al., CVPR-W 2019, https://captain-whu.github.io/iSAID/dataset.html "
            "(images: DOTA-v1.0)"
        ),
        licence="academic use only",
        split="val",
        size=458,
        layout=(
            "val/images/P*.png",
            "val/Semantic_masks/images/*_instance_color_RGB.png | "
            "val/masks/*_instance_color_RGB.png",
        ),
        how_to_get=(
            "download the iSAID val semantic masks and the DOTA-v1.0 val images; put the "
            "images in DATA_ROOT/iSAID/val/images/ and the masks in "
            "DATA_ROOT/iSAID/val/Semantic_masks/images/ (official layout)"
        ),
        counts={"val/images/P*.png": 458},
    ),
    "potsdam": DatasetInfo(
        title="ISPRS Potsdam",
        source=(
            "ISPRS 2D Semantic Labeling Contest, https://www.isprs.org/education/"
            "benchmarks/UrbanSemLab/2d-sem-label-potsdam.aspx"
        ),
        licence="ISPRS benchmark terms (research use; registration)",
        split="val",
        size=2016,
        layout=("img_dir/val/*.png", "ann_dir/val/*.png"),
        how_to_get=(
            "download 2_Ortho_RGB.zip and 5_Labels_all_noBoundary.zip, then run "
            "mmsegmentation's tools/dataset_converters/potsdam.py (512 px patches, "
            "stride 256) with -o DATA_ROOT/potsdam"
        ),
        counts={"img_dir/val/*.png": 2016, "ann_dir/val/*.png": 2016},
    ),
    "vaihingen": DatasetInfo(
        title="ISPRS Vaihingen",
        source=(
            "ISPRS 2D Semantic Labeling Contest, https://www.isprs.org/education/"
            "benchmarks/UrbanSemLab/2d-sem-label-vaihingen.aspx"
        ),
        licence="ISPRS benchmark terms (research use; registration)",
        split="val",
        size=398,
        layout=("img_dir/val/*.png", "ann_dir/val/*.png"),
        how_to_get=(
            "download ISPRS_semantic_labeling_Vaihingen.zip and "
            "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip, then run "
            "mmsegmentation's tools/dataset_converters/vaihingen.py with "
            "-o DATA_ROOT/vaihingen"
        ),
        counts={"img_dir/val/*.png": 398, "ann_dir/val/*.png": 398},
    ),
    "dior": DatasetInfo(
        title="DIOR",
        source=_DIOR_SRC,
        licence="academic use (no licence file)",
        split="test",
        size=11738,
        layout=("Annotations/DIOR_test.json", "JPEGImages/*.jpg"),
        how_to_get=(
            "download DIOR (JPEGImages-test, Annotations), then "
            "`remotesam-bench data prepare dior --src DIOR --out DATA_ROOT` writes "
            "DATA_ROOT/DIORcoco (COCO json with RemoteSAM's category ids 1..20)"
        ),
        counts={"JPEGImages/*.jpg": 11738},
    ),
    "dotav2": DatasetInfo(
        title="DOTA-v2.0",
        source=_DOTA_SRC,
        licence="academic purposes only, commercial use prohibited",
        split="val",
        size=593,
        layout=(
            "val/images/*.png | images/*.png",
            "val/annfiles/*.txt | val/labelTxt/*.txt | annfiles/*.txt | labelTxt/*.txt",
        ),
        how_to_get=(
            "download DOTA-v2.0 val (images of v1.0 and v2.0, labelTxt-v2.0), then "
            "`remotesam-bench data prepare dotav2 --src DOTA-v2.0/val --out DATA_ROOT` "
            "cuts 1024 px patches into DATA_ROOT/DOTAv2_patches/val"
        ),
    ),
    "dior_rsvg": DatasetInfo(
        title="DIOR-RSVG",
        source="Zhan et al., TGRS 2023, https://github.com/ZhanYang-nwpu/RSVG-pytorch",
        licence="none stated",
        split="test",
        size=7500,
        layout=("Annotations/*.xml", "JPEGImages/*.jpg", "train.txt", "val.txt", "test.txt"),
        how_to_get=(
            "download DIOR_RSVG from the Google Drive folder 1hTqtYsC6B-m4ED2ewx5oKuYZV13EoJp_ "
            "(RSVG-pytorch README) and unpack it as DATA_ROOT/RSVG"
        ),
        checksums={
            "train.txt": "d55036d5dd9b234e74439cda910c8c0119894fbfcf72386412aef8be208c436b",
            "val.txt": "6324ad50498948e791e714cc03cb2ac7af4872e333087a48912f714141e979f9",
            "test.txt": "d1d0b200fc2be1c5c1ca776601278adb3566d0efc6ea7a690ba927ce1877e5f8",
        },
        counts={"Annotations/*.xml": 17402, "JPEGImages/*.jpg": 17402},
    ),
    "ucmerced": DatasetInfo(
        title="UC Merced Land Use",
        source=(
            "Yang and Newsam, ACM GIS 2010, http://weegee.vision.ucmerced.edu/datasets/landuse.html"
        ),
        licence="none stated (imagery: USGS National Map)",
        split="all",
        size=2100,
        layout=("Images/*/*.tif",),
        how_to_get=(
            "download UCMerced_LandUse.zip from the dataset page and unpack it as "
            "DATA_ROOT/UCMerced_LandUse"
        ),
        counts={"Images/*/*.tif": 2100},
    ),
    "ucm_captions": DatasetInfo(
        title="UCM-captions",
        source=(
            "Qu et al., CITS 2016; distributed with "
            "https://github.com/201528014227051/RSICD_optimal"
        ),
        licence="none stated",
        split="test",
        size=210,
        layout=("dataset.json", "Images/*.tif"),
        how_to_get=(
            "download UCM-captions (dataset.json + imgs) via the RSICD_optimal README and "
            "put them in DATA_ROOT/UCM_captions/{dataset.json,Images/1.tif ...}"
        ),
        counts={"Images/*.tif": 2100},
    ),
    "count_dior": DatasetInfo(
        title="DIOR counting (Falcon)",
        source="Yao et al., 2025 (Falcon), FCD-78M on ModelScope (TianHuiLab/FCD-78M)",
        licence="none stated",
        split="test",
        size=None,
        layout=("Annotation/test_IMG_CT.json", "Images/*"),
        how_to_get=(
            "download Falcon's FCD-78M test set from ModelScope TianHuiLab/FCD-78M and "
            "copy Counting/test/DIOR to DATA_ROOT/Counting/test/DIOR"
        ),
    ),
    "count_dotav2": DatasetInfo(
        title="DOTA-v2 counting (Falcon)",
        source="Yao et al., 2025 (Falcon), FCD-78M on ModelScope (TianHuiLab/FCD-78M)",
        licence="none stated",
        split="test",
        size=None,
        layout=("Annotation/test_IMG_CT.json", "Images/*"),
        how_to_get=(
            "download Falcon's FCD-78M test set from ModelScope TianHuiLab/FCD-78M and "
            "copy Counting/test/DOTAv2 to DATA_ROOT/Counting/test/DOTAv2"
        ),
    ),
}
