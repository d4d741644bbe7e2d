"""turnout_common."""
