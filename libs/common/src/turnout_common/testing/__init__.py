"""Test support: real PostgreSQL, a real Kafka-protocol broker, local upstream servers."""
