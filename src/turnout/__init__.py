"""turnout."""
