"""SQL migrations."""
