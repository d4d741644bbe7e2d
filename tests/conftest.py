"""Cross-service end-to-end fixtures: the whole system started as a user would."""
