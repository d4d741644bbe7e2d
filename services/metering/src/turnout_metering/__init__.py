"""turnout_metering."""
