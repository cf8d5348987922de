"""Visit -> prompt text (en, zh); Plan <-> target text; training pairs split by patient."""

from diaguide.prompts.parse import ParseResult, parse_plan
from diaguide.prompts.render import render_prompt
from diaguide.prompts.target import plan_to_text

__all__ = ["ParseResult", "parse_plan", "plan_to_text", "render_prompt"]
