"""pydantic v2 request/response models, one module per resource."""
