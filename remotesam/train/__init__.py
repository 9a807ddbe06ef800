"""remotesam.train."""
