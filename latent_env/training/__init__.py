"""Adapters between latent-env and TRL: configuration, stages, trainers, evaluation."""
