"""Kubernetes operator for Brain AI: one BrainAICluster resource in, a running deployment out."""

__version__ = "0.1.0"
