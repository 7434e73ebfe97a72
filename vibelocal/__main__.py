"""Allow `python -m vibelocal`."""

from vibelocal.cli import main

main()
