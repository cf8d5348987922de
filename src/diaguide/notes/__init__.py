"""Clinical facts from free text, English and Chinese, with the words they came from (docs/notes.md)."""

from diaguide.notes.extract import NoteFacts, extract

__all__ = ["NoteFacts", "extract"]
