"""Training pipeline: ``liverseg prepare`` / ``train`` / ``evaluate`` / ``export`` implementations.

Modules here may import torch and fastai, but only inside functions (the CLI
must start without them).
"""
