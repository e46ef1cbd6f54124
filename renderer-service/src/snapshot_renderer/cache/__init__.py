"""The two cache layers: an in-process LRU and the shared disk store."""
