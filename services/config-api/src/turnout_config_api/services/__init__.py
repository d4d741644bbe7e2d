"""Business logic: each change is one transaction (rows + audit + outbox event)."""
