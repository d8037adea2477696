"""The DVC stages, one module each, named as in dvc.yaml. Thin: read the stage's sections of
params.yaml, call the libraries, write the outputs. A stage never imports another."""
