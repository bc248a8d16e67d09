"""Where conversations live: the `Store` protocol and its SQLAlchemy implementation."""
