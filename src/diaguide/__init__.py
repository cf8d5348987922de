"""DiaGuide: LLM-assisted diabetes outpatient care."""

__version__ = "0.1.0"
