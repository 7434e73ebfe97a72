"""Widgets of the chat app: prompt input, replies with their thinking panel, budget meter, stats, sidebar."""
