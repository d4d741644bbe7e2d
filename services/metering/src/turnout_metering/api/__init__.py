"""HTTP routers of the metering API (prefix ``/api/v1``)."""
