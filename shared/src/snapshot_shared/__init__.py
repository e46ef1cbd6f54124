"""What the API and the renderer must agree on: messages, topology, hashing, store layout."""
