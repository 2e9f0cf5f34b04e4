"""The repository under test: git, every DVC call, settings, run-directory documents and errors."""
