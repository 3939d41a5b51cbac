"""The HTTP layer: the v1 API as an ASGI application over a storage backend."""
