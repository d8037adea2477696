"""Social Reward: a community-preference reward learned from remixes."""

__version__ = "0.1.0"
