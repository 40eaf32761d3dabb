"""sentisynth: SHAP-guided synthetic data for low-resource text classification."""

__version__ = "0.1.0"
