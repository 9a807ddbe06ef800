"""The data layer: what each dataset is and how to get it (``remotesam-bench data``).

``check`` lists datasets and verifies a data root against their :class:`DatasetInfo`,
``prepare`` converts the datasets' own releases into what the adapters read, ``fetch`` brings
a pinned mirror through the Hugging Face Hub cache.
"""
