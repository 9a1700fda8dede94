"""Integrations with the tools the field already uses: MLflow tracking, Optuna search, Ray scale-out."""
