"""The message-level LLM layer (messages or a prompt in, completions with usage out) that the API generator and
the LLM judge share: `base` (the protocol), `openai_compat` (any OpenAI-compatible server), `cache` (the
durable response cache), `parsing` (posts out of free text or JSON), `batch` (OpenAI Batch files)."""
