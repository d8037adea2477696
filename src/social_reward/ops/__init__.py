"""Running the pipeline in production: the run's site, its provenance, retraining, the registry."""
