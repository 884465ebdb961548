"""Chat templates for instruct models: the prompt as the user turn, the answer as the assistant turn.

The paper scores plain prompts ("Question: ...\\nAnswer: ..."), and that stays the default. An
instruct model was tuned on its own chat format, so ``--chat-template`` wraps each prompt (the
few-shot examples included, as one user turn, like lm-eval's ``--apply_chat_template`` without
``--fewshot_as_multiturn``) in the model's template up to the start of the assistant's turn. The
answer follows without a leading space, and only the answer's tokens are scored: the template's own
tokens (the newline after the assistant marker included) stay in the context, where lm-eval would
move that newline into the scored continuation.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import ConfigError
from .tasks.base import Item


def chat_prompt(tokenizer, prompt: str) -> str:
    """``prompt`` as the user turn of the tokenizer's chat template, ending where the answer begins."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"--chat-template: the tokenizer of {getattr(tokenizer, 'name_or_path', 'this model')} has no chat "
                          f"template (a base model); score it with the plain prompt (leave --chat-template out)")
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)


def chat_item(item: Item, tokenizer) -> Item:
    """The item with every context as a chat prompt and every answer without its leading space."""
    prompts = {c: chat_prompt(tokenizer, c.rstrip()) for c in set(item.contexts)}
    return replace(item, contexts=tuple(prompts[c] for c in item.contexts),
                   continuations=tuple(c.lstrip() for c in item.continuations))
