"""remotesam.data."""
