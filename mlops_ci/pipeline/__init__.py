"""The reference pipeline's stages: prepare, train, evaluate.

Each stage is a module run by DVC as `python -m mlops_ci.pipeline.<stage>` from the repository
root; it reads `params.yaml` there. The stages import only scikit-learn, pandas, numpy and yaml,
so a project can carry a copy of this folder and run it without the rest of mlops-ci.
"""
