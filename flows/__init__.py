"""Prefect flows over the DVC stages. Orchestration only: the logic lives in src/social_reward."""
