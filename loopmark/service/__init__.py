"""The render service: a cache with a rendering lease, over the storage, records and dispatch."""
