"""The Social Reward model: an open_clip backbone whose prompt-image cosine is the reward."""
