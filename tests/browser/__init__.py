"""Browser tests: the system Chromium, driven by Playwright, against `hxchat serve`."""
