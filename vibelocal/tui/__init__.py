"""The Textual chat app: imported lazily by the CLI so `vibelocal --help` never loads Textual."""
