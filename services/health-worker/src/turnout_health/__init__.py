"""turnout_health."""
