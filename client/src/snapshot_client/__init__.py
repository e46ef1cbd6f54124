"""Room Snapshots client."""
