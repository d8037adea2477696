"""Lightning plumbing both trainers share: Trainer options, epoch logs, schedules, run identity."""
