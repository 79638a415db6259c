"""Chat: rendering messages into a prompt with the model's template."""

from .template import ChatTemplate, ChatTemplateError

__all__ = ["ChatTemplate", "ChatTemplateError"]
