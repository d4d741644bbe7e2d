"""turnout_config_api."""
