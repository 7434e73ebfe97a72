"""vibelocal: run the VibeThinker-3B reasoning model on a laptop, offline."""

__version__ = "0.1.0"
