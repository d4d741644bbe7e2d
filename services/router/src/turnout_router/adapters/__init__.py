"""Upstream wire protocols: one module per protocol behind :class:`base.Adapter`."""
