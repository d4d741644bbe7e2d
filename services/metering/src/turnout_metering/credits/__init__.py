"""Credits and budgets: prepaid grants, debits, the ledger and what a user has left."""
