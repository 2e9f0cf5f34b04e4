"""The repository under test: git, every DVC call, what `dvc.yaml` declares, settings, errors."""
