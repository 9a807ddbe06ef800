"""remotesam.postprocess."""
