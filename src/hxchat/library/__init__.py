"""The conversation library: export (Markdown, JSON, everything streamed) and import
(hxchat's own JSON, ChatGPT's `conversations.json`). See docs/architecture.md."""
