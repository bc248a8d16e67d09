"""The event log of generations in flight: in memory (one process) or Redis Streams."""
