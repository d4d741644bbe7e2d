"""Alerts: budget and credit crossings found while metering (``budget``), metering's own lag
(``lag``), and delivery of every ``turnout.alerts.v1`` event to the configured webhooks
(``fanout`` turns an event into delivery rows, ``delivery`` sends them with retries)."""
