"""`filters.judge`: an LLM (any OpenAI-compatible endpoint, the same client as `generator=api`) reads each post
and answers, as structured output, whether it expresses the intended label and reads like a real post.

The rubric and the keep rule are config; answers are cached per post by the client's response cache (a rerun
or another round asks nothing twice). When a teacher is at hand, the judge also reports how far it agrees
with the teacher on the same posts (Cohen's kappa, `filters/judge/kappa_teacher`): a judge that disagrees
with the teacher as much as chance says something about one of them.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from sentisynth.filters.base import FilterContext, Sample, reject
from sentisynth.llm.base import LLMRequest
from sentisynth.llm.openai_compat import ApiSettings, OpenAICompatLLM

log = logging.getLogger(__name__)

RUBRIC = (
    "You check synthetic training data for a {task} classifier of social media posts. The classes are: "
    "{labels}. Read the post and say whether it clearly expresses the intended class, and whether it reads "
    "like a real post a person would write (not a list, not an explanation, not a template)."
)
FIELDS = ("expresses_label", "realistic")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def verdict_schema() -> dict[str, Any]:
    """The judge's structured output: two booleans and a short reason."""
    props = {k: {"type": "boolean"} for k in FIELDS}
    props["reason"] = {"type": "string", "maxLength": 200}
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "verdict",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": props,
                "required": [*FIELDS, "reason"],
                "additionalProperties": False,
            },
        },
    }


def parse_verdict(text: str) -> dict[str, Any] | None:
    """The verdict object from an answer (JSON, possibly in a code fence); None when it is not one."""
    try:
        obj = json.loads(_FENCE.sub("", text.strip()))
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k), bool) for k in FIELDS):
        return None
    return obj


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's kappa of two boolean verdicts on the same items (None when undefined: no items, or both
    raters constant and equal)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if len(a) == 0:
        return None
    po = float(np.mean(a == b))
    pe = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    return None if pe >= 1.0 else (po - pe) / (1.0 - pe)


class JudgeFilter:
    """Keep a post when the judge's answer has every field of `keep` true."""

    name = "judge"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        endpoint: str = "chat",
        rubric: str = RUBRIC,
        task: str = "text",
        keep: list[str] | tuple[str, ...] = FIELDS,
        on_unparsed: str = "drop",
        structured_output: bool = True,
        max_tokens: int = 128,
        seed: int = 0,
        teacher: Any = None,
        **client: Any,
    ) -> None:
        unknown = [k for k in keep if k not in FIELDS]
        if unknown or on_unparsed not in ("drop", "keep"):
            raise ValueError(
                f"filters.judge: keep must name fields of {FIELDS} and on_unparsed drop|keep, got {list(keep)}, "
                f"{on_unparsed!r}"
            )
        self.settings = ApiSettings(
            base_url=str(base_url), model=str(model), api_key_env=api_key_env, endpoint=endpoint, **client
        )
        self.rubric, self.task, self.keep = rubric, task, tuple(keep)
        self.on_unparsed, self.structured_output = on_unparsed, bool(structured_output)
        self.max_tokens, self.seed = int(max_tokens), int(seed)
        self.teacher_cfg = (
            teacher  # the teacher model config to compare with (default chain: filters.teacher.model)
        )
        self.step_info: dict[str, Any] = {}

    def request(self, text: str, label: str, labels: list[str]) -> LLMRequest:
        system = self.rubric.format(task=self.task, labels=", ".join(labels))
        user = f"Intended class: {label}\nPost: {text}\nAnswer as JSON with {', '.join(FIELDS)} and reason."
        params: dict[str, Any] = {"temperature": 0.0, "max_tokens": self.max_tokens, "seed": self.seed}
        if self.structured_output:
            params["response_format"] = verdict_schema()
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return LLMRequest(messages, None, params)

    def apply(self, samples: list[Sample], ctx: FilterContext) -> tuple[list[Sample], list[Sample]]:
        if not samples:
            return [], []
        labels = list(ctx.label_names or sorted({str(s["label_name"]) for s in samples}))
        client = OpenAICompatLLM(self.settings, Path(ctx.cache_dir) if ctx.cache_dir else None)
        answers = client.complete(
            [self.request(str(s["text"]), str(s["label_name"]), labels) for s in samples]
        )
        kept, dropped, verdicts = [], [], []
        for s, ans in zip(samples, answers):
            v = parse_verdict(ans.text)
            verdicts.append(v is not None and all(v[k] for k in self.keep))
            s["judge"] = v if v is not None else {"unparsed": ans.text[:200]}
            if v is None:
                (kept if self.on_unparsed == "keep" else dropped).append(
                    s if self.on_unparsed == "keep" else reject(s, "judge_unparsed", ans.text[:80])
                )
            elif verdicts[-1]:
                kept.append(s)
            else:
                failed = [k for k in self.keep if not v[k]]
                dropped.append(reject(s, f"judge_not_{failed[0]}", str(v.get("reason", ""))[:200]))
        self.step_info = {
            "unparsed": sum(1 for s in samples if "unparsed" in s["judge"]),
            **{f"api_{k}": v for k, v in client.stats.items() if isinstance(v, (int, float))},
            **self.agreement(samples, np.array(verdicts), ctx),
        }
        return kept, dropped

    def agreement(self, samples: list[Sample], verdicts: np.ndarray, ctx: FilterContext) -> dict[str, Any]:
        """Cohen's kappa between the judge's keep and the teacher's agreement with the intended label (its top
        class), on the same posts; nothing when no teacher is configured or at hand."""
        if ctx.teacher is None and (self.teacher_cfg is None or ctx.data is None):
            return {}
        from sentisynth.filters.teacher import teacher_for

        scores = teacher_for(ctx, self.teacher_cfg).score([str(s["text"]) for s in samples])
        agree = np.asarray(scores["label"]) == np.array([int(s["label"]) for s in samples])
        kappa = cohen_kappa(verdicts, agree)
        return {
            "kappa_teacher": None if kappa is None else round(kappa, 4),
            "agreement_teacher": round(float(np.mean(verdicts == agree)), 4),
        }
