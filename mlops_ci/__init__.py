"""mlops-ci: GitOps CI/CD for machine learning on top of DVC pipelines."""

__version__ = "0.1.0"
