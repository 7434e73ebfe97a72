"""The conversation list in the sidebar: select to resume; keys to rename and delete."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from vibelocal.history import Conversation


class ConversationList(OptionList):
    """One option per stored conversation, newest activity first; option ids are conversation ids."""

    BINDINGS = [
        Binding("delete,backspace", "delete_selected", "Delete", show=False),
        Binding("r", "rename_selected", "Rename", show=False),
    ]

    class Chosen(Message):
        """The user picked a conversation (Enter or click)."""

        def __init__(self, conversation_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    class DeleteRequested(Chosen):
        """Delete was pressed on a conversation."""

    class RenameRequested(Chosen):
        """Rename was pressed on a conversation."""

    def show(self, conversations: list[Conversation], current: int | None) -> None:
        self.clear_options()
        self.add_options([Option(c.title, id=str(c.id)) for c in conversations])
        if current is not None:
            for index, c in enumerate(conversations):
                if c.id == current:
                    self.highlighted = index
                    break

    def _selected_id(self) -> int | None:
        if self.highlighted is None:
            return None
        option = self.get_option_at_index(self.highlighted)
        return int(option.id) if option.id else None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Chosen(int(event.option.id)))

    def action_delete_selected(self) -> None:
        if (cid := self._selected_id()) is not None:
            self.post_message(self.DeleteRequested(cid))

    def action_rename_selected(self) -> None:
        if (cid := self._selected_id()) is not None:
            self.post_message(self.RenameRequested(cid))
