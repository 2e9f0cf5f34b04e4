"""The reference pipeline's stages: prepare, train, evaluate.

Each stage is a module run by DVC as `python -m mlops_ci.pipeline.<stage>` from the repository
root; it reads `params.yaml` there. The stages import only scikit-learn, pandas, numpy, yaml and
each other (relatively), so a project carries a copy of this folder as `pipeline/` and runs it
as `python -m pipeline.<stage>` (see `mlops_ci.init.scaffold`).
"""
