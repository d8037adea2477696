"""The generator: the small default or a real Stable Diffusion, sampling, fine-tuning."""
