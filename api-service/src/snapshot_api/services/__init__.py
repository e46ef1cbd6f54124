"""Use cases: what the routes ask for, in terms of repositories and messaging."""
