"""turnout_router."""
