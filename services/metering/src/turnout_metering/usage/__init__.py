"""Usage records: consumed from turnout.usage.v1, written to the ledger, read back by the API."""
