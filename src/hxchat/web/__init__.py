"""The web layer: pages and fragments (HTML), the JSON API, and the event streams."""
