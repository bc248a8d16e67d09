"""Runs the command line for `python -m hxchat`."""

from hxchat.cli import main

raise SystemExit(main())
