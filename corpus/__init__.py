"""The misconfiguration corpus of issue 12 (see README.md); `harness` runs it."""
