"""Models: one streaming interface, registered by prefix (echo, gemini:, openai:, ollama:)."""
