"""remotesam.model."""
