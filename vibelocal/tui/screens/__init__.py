"""Screens of the chat app: chat, first-run setup, settings, help, dialogs (and the tutor's own screen)."""
