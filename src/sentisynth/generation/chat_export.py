"""Export a `from_pretrained` causal LM (the offline `tiny` model, a fine-tuned generator) with a chat
template, so any OpenAI-compatible server (`vllm serve`, TGI, llama.cpp's converter) can host it and both
`/v1/chat/completions` and `/v1/completions` work. This is how the API generator is tested here without a
pretrained chat model: the tests serve a miniature tiny model through vLLM's own server.

    python -m sentisynth.generation.chat_export SRC_DIR OUT_DIR
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

# A base LM has no roles: the template writes each message's text on its own line and, for a generation
# prompt, ends on a newline so the model writes the next line (a post). Plain Jinja, as every server takes.
PLAIN_TEMPLATE = (
    "{% for message in messages %}{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}{% endif %}"
)


def export_chat_model(src: str | Path, out: str | Path, chat_template: str = PLAIN_TEMPLATE) -> Path:
    """Copy the model directory `src` to `out` with `chat_template` set on its tokenizer (kept if it has one)."""
    from transformers import AutoTokenizer

    src, out = Path(src), Path(out)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{src}: not a from_pretrained model directory (no config.json)")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("integrity.json", "meta.json", "*.ckpt"))
    tok = AutoTokenizer.from_pretrained(src)
    if not getattr(tok, "chat_template", None):
        tok.chat_template = chat_template
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="a from_pretrained causal LM directory")
    p.add_argument("out", help="where to write the copy with a chat template")
    args = p.parse_args()
    print(export_chat_model(args.src, args.out))


if __name__ == "__main__":
    main()
