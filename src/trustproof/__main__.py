"""`python -m trustproof` runs the command-line interface."""

from __future__ import annotations

from trustproof.cli import main

main()
