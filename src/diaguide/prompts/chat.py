"""A prompt (and its reply) inside the tokenizer's chat template: the one rendering training and inference share.

Training trains on `chat_turns(prompt, target)`; inference generates after `chat_text(prompt)`, the same head, so the
model is served exactly the text it was trained on (docs/design.md, "The flow").
"""

from __future__ import annotations


def chat_turns(tokenizer, prompt: str, target: str, use_template: bool) -> tuple[str, str]:
    """(prompt text, target text) as the model sees them; their concatenation is the whole example."""
    if not use_template:
        return prompt + "\n", target + (tokenizer.eos_token or "")
    user = [{"role": "user", "content": prompt}]
    head = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*user, {"role": "assistant", "content": target}], tokenize=False)
    if not full.startswith(head):
        # templates that rewrite earlier turns once a reply exists: fall back to head + reply + EOS
        return head, target + (tokenizer.eos_token or "")
    return head, full[len(head) :]


def chat_text(tokenizer, prompt: str) -> tuple[str, bool]:
    """(text to tokenise, add_special_tokens) for a prompt, formatted exactly as training formats it."""
    use_template = bool(getattr(tokenizer, "chat_template", None))
    head, _ = chat_turns(tokenizer, prompt, "", use_template)
    # the chat template writes its own special tokens; plain text gets the tokenizer's (e.g. BOS)
    return head, not use_template
