"""One table of every numeric and enumerated option: its type and range, checked before any work starts.

`check_config(cfg)` walks the composed config (as written, before interpolation: `${seed}` is checked where it
is set) and stops at the first value its rule refuses, with one `ConfigError` line naming the key, the value
and the allowed range (`classifier.epochs must be an integer in [1, 100000], got 0`). `cli.run_task` calls it
for train.py, generate.py and every study, so `seed=abc`, `classifier.lr=nan` or `top_p=2` never reach
NumPy, Lightning or a generator.

Adding an option: add a row to `RULES` (a key pattern and a `Rule`). Patterns are dotted keys; `*` is one
key, a leading `**.` any prefix (the same filter options under `filters.` and `augment.filters.`), `[]` each
element of a list. The first matching row wins, so specific rows come before generic ones.
`tests/test_schema.py` composes every config group and experiment and fails on a numeric key without a row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sentisynth.errors import ConfigError

INF = math.inf
SEED_MAX = 2**32 - 1  # NumPy's SeedSequence and torch.manual_seed take 0 .. 2**32 - 1 everywhere
SKIP = ("hydra", "paths", "logger")  # Hydra's own settings; directories; tracker settings (strings)


@dataclass(frozen=True)
class Rule:
    """`kind`: int | float | bool | choice | count (a whole number >= lo or 'full'). `also`: extra literal
    values allowed beside the range (`tau: auto`). `null`: None allowed (the option's 'unset')."""

    kind: str
    lo: float = -INF
    hi: float = INF
    lo_open: bool = False
    hi_open: bool = False
    also: tuple[Any, ...] = ()
    null: bool = False
    hint: str = ""  # appended to the error line: what to do instead

    def describe(self) -> str:
        if self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = "one of " + ", ".join(str(c) for c in self.also)
        elif self.kind == "count":
            text = f"a whole number of posts >= {self.lo:g} or 'full'"
        else:
            noun = "an integer" if self.kind == "int" else "a number"
            lo, hi = _bound(self.lo), _bound(self.hi)
            text = f"{noun} in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
            text = noun if self.lo == -INF and self.hi == INF else text
            text += "".join(f" or {a!r}" for a in self.also)
        return text + (" or null" if self.null else "")

    def allows(self, value: Any) -> bool:
        if value is None:
            return self.null
        if self.kind == "count" and isinstance(value, str):  # as data.parse_count reads it
            return value.strip().lower() == "full" or value.strip().isdigit()
        if self.kind == "choice" or (value in self.also and not isinstance(value, bool)):
            return value in self.also and type(value) is not bool
        if self.kind == "bool":
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        if self.kind in ("int", "count") and not isinstance(value, int):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below


def _bound(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def Int(lo: float = -INF, hi: float = INF, **kw: Any) -> Rule:  # noqa: N802 - reads as a type in the table
    return Rule("int", lo, hi, **kw)


def Num(lo: float = -INF, hi: float = INF, **kw: Any) -> Rule:  # noqa: N802
    return Rule("float", lo, hi, **kw)


def Choice(*options: Any, null: bool = False) -> Rule:  # noqa: N802
    return Rule("choice", also=options, null=null)


BOOL, SEED, COUNT = Rule("bool"), Int(0, SEED_MAX), Rule("count", 0)
POS_INT, NONNEG_INT = Int(1), Int(0)
SHARE, OPEN_SHARE = Num(0, 1), Num(0, 1, lo_open=True)  # [0, 1] and (0, 1]
LR = Num(0, 1, lo_open=True)
FRACTION_BELOW_1 = Num(0, 1, hi_open=True)


def _classifier_rows(p: str) -> list[tuple[str, Rule]]:
    """The classifier options; the same under `classifier.`, the filter teacher's `model.` and the
    guidance classifier (`augment.generate.classifier.`)."""
    return [
        (f"{p}.epochs", Int(1, 100_000)),
        (f"{p}.lr", LR),
        (f"{p}.max_length", Int(1, 1_000_000)),
        (f"{p}.batch_size", Int(1, 1_000_000)),
        (f"{p}.eval_batch_size", Int(1, 1_000_000)),
        (f"{p}.min_steps", Int(0, null=True)),
        (f"{p}.patience", Int(0, null=True)),  # 0 or null: no early stopping
        (f"{p}.warmup", Num(0)),  # a fraction of the steps (< 1) or a step count
        (f"{p}.weight_decay", SHARE),
        (f"{p}.alpha", SHARE),
        (f"{p}.T", Num(0, 1000, lo_open=True)),
        (f"{p}.beta", Num(0)),
        (f"{p}.num_threads", Int(1, null=True)),
        (f"{p}.class_weight", Choice("balanced", null=True)),
        (f"{p}.model", Choice("lr", "svm", "xgb")),
        (f"{p}.C", Num(0, lo_open=True)),
        (f"{p}.max_iter", POS_INT),
        (f"{p}.min_df", Num(0, lo_open=True)),  # a count, or a share of documents (sklearn)
        (f"{p}.max_df", Num(0, lo_open=True)),
        (f"{p}.max_features", Int(1, null=True)),
        (f"{p}.n_jobs", Int(-1, 4096)),
        (f"{p}.blas_threads", Int(1, null=True)),
        (f"{p}.word_ngram_range[]", Int(1, 10)),
        (f"{p}.char_ngram_range[]", Int(1, 20)),
        (f"{p}.xgb_params.learning_rate", LR),
        (f"{p}.xgb_params.max_depth", Int(1, 64)),
        (f"{p}.xgb_params.n_estimators", Int(1, 1_000_000)),
        (f"{p}.xgb_params.subsample", OPEN_SHARE),
        (f"{p}.xgb_params.colsample_bytree", OPEN_SHARE),
        (f"{p}.xgb_params.*", Num()),  # any other XGBoost parameter: a number
        (f"{p}.{{sublinear_tf,group_by_length,progress,local_files_only,trust_remote_code}}", BOOL),
    ]


def _lm_training_rows(p: str) -> list[tuple[str, Rule]]:
    """Pretraining / fine-tuning blocks of the generators (`pretrain`, `decoder`, `finetune`, `lora`)."""
    return [
        (f"{p}.epochs", Int(1, 100_000)),
        (f"{p}.max_steps", Int(1, null=True)),
        (f"{p}.lr", LR),
        (f"{p}.warmup_steps", NONNEG_INT),
        (f"{p}.weight_decay", SHARE),
        (f"{p}.val_fraction", FRACTION_BELOW_1),
        (f"{p}.val_every", POS_INT),
        (f"{p}.patience", Int(0, null=True)),
        (f"{p}.max_lines", Int(1, null=True)),
        (f"{p}.seed", SEED),
        (f"{p}.{{vocab_size,n_embd,n_layer,n_head,n_positions,seq_len,num_layers,r}}", Int(1, null=True)),
        (f"{p}.alpha", Num(0, lo_open=True)),
        (f"{p}.dropout", FRACTION_BELOW_1),
    ]


RULES: list[tuple[str, Rule]] = [
    # root
    ("seed", SEED),
    ("save_model", BOOL),
    ("save_predictions", BOOL),
    ("leak_guard.threshold", OPEN_SHARE),
    ("leak_guard.on_overlap", Choice("drop", "error")),
    # data
    ("data.seed_size", COUNT),
    ("data.seed", SEED),
    ("data.split_seed", Int(0, SEED_MAX, null=True)),
    ("data.fractions[]", SHARE),
    ("data.{val_fraction,test_fraction}", FRACTION_BELOW_1),
    ("data.normalize_labels", BOOL),
    # classifiers
    *_classifier_rows("classifier"),
    *_classifier_rows("**.teacher.model"),
    *_classifier_rows("augment.generate.classifier"),
    # generators
    (
        "generator.sampling.temperature",
        Num(0, 100, lo_open=True, hint="greedy decoding is generator.sampling.do_sample=false"),
    ),
    ("generator.sampling.top_p", OPEN_SHARE),
    ("generator.sampling.top_k", Int(0, null=True)),  # null: not sent (generator=api)
    ("generator.sampling.repetition_penalty", Num(0, 100, lo_open=True, null=True)),
    ("generator.sampling.max_new_tokens", Int(1, 1_000_000)),
    ("generator.sampling.do_sample", BOOL),
    ("generator.budget.n_per_class", POS_INT),
    ("generator.budget.total", Int(1, null=True)),
    ("generator.budget.distribution", Choice("uniform", "balance", "seed")),
    ("generator.budget.max_rounds", POS_INT),
    ("generator.budget.max_requests_per_class", POS_INT),
    ("generator.limits.max_generated", Int(1, null=True)),
    ("generator.limits.max_cost_usd", Num(0, null=True)),
    ("generator.limits.max_total_tokens", Int(1, null=True)),
    ("generator.pricing.{input_per_mtok,output_per_mtok}", Num(0)),
    ("generator.endpoint", Choice("chat", "completions")),
    ("generator.{max_concurrency,posts_per_request,posts_per_prompt,workers,batch_size}", POS_INT),
    ("generator.{requests_per_minute,tokens_per_minute}", Num(0, lo_open=True, null=True)),
    ("generator.timeout_s", Num(0, 86_400, lo_open=True)),
    ("generator.max_retries", Int(0, 100)),
    ("generator.{batch,dry_run,trust_remote_code}", BOOL),
    ("generator.backend", Choice("hf", "vllm", "api")),
    ("generator.teacher_tau", Num(0, 1, also=("auto",))),
    ("generator.budget.min_kept_share", SHARE),
    ("generator.budget.max_target_multiple", Num(1)),
    ("generator.pretrain.ckpt_every", POS_INT),
    ("generator.teacher_model.{epochs,max_length}", POS_INT),
    ("generator.teacher_model.min_steps", NONNEG_INT),
    ("preview", Int(1, null=True)),
    ("generator.train_blocks", Int(1, null=True)),
    ("generator.anchor_words", NONNEG_INT),
    ("generator.order", Int(2, 6)),  # generator=ngram
    ("generator.discount", Num(0, 1, lo_open=True)),
    ("generator.candidates", POS_INT),
    ("generator.class_weight", Num(0, lo_open=True)),
    ("generator.max_lines", Int(1, null=True)),
    ("generator.pretrain_steps", NONNEG_INT),
    ("generator.vllm.tensor_parallel_size", POS_INT),
    ("generator.vllm.gpu_memory_utilization", OPEN_SHARE),
    ("generator.vllm.max_num_seqs", POS_INT),
    ("generator.vllm.kv_cache_memory_bytes", Int(1, null=True)),
    ("generator.vllm.enforce_eager", Rule("bool", null=True)),
    *_lm_training_rows("generator.pretrain"),
    *_lm_training_rows("generator.decoder"),
    *_lm_training_rows("generator.finetune"),
    *_lm_training_rows("generator.lora"),
    ("generator.decoder.batch_size", POS_INT),
    ("generator.{pretrain,finetune,lora}.batch_size", POS_INT),
    # guidance
    ("guidance.bias", Num(-100, 100)),
    ("guidance.{bias_keywords,keyword_pool,n_exemplars,n_keywords}", NONNEG_INT),
    ("guidance.max_exemplar_words", POS_INT),
    ("guidance.{rounds,contrastive_k,pair_slots}", POS_INT),  # guidance=adaptive
    ("guidance.patience", NONNEG_INT),
    ("guidance.deliver", Choice("best", "all")),
    ("guidance.cv_folds", Int(2, 100)),
    ("guidance.floor_share", SHARE),
    ("guidance.allocation", Choice("f1_deficit", "uniform", "pairs")),
    (
        "guidance.attributes.{enabled,mine_from_seed}",
        BOOL,
    ),  # attributes per request (generation/attributes.py)
    ("guidance.attributes.kinds[]", Choice("topic", "style", "length", "persona")),
    ("guidance.attributes.{n_topics,min_topic_count}", POS_INT),
    ("guidance.attributes.max_topic_lift", Num(1)),
    # keywords (generate.py's group; train.py's under augment.generate)
    ("**.keywords.{top_k,min_class_df,shared_top_n,shared_max_classes,transformer_budget}", POS_INT),
    ("**.keywords.{transformer_max_evals,blas_threads}", POS_INT),
    ("**.keywords.max_ngram", Int(1, 2)),
    ("**.keywords.{weight_shap,weight_tfidf}", Num(0)),
    ("**.keywords.{exemplar_k,exemplar_min_tokens}", NONNEG_INT),
    ("**.keywords.{background_size,mmr_pool}", Int(1, null=True)),
    ("**.keywords.mmr_lambda", SHARE),
    ("**.keywords.{min_per_class,fallback_min_df}", NONNEG_INT),  # keyword fallbacks (guidance/fallback.py)
    ("**.keywords.cv_folds", Int(2, 100)),
    ("**.keywords.combine", Choice("zscore", "rank_product")),
    ("**.keywords.exemplar_strategy", Choice("random", "confident", "keywords", "diverse")),
    ("**.keywords.{drop_shared,exclude_stop_words,exclude_numbers,exclude_punctuation}", BOOL),
    # filters (train.py/generate.py `filters.`, the pseudo arm's `augment.filters.`)
    ("**.heuristic.{min_words,min_content_words}", NONNEG_INT),
    ("**.heuristic.{max_words,max_chars,max_same_token_run}", POS_INT),
    ("**.heuristic.{max_repeated_ngram_frac,max_gibberish_frac}", SHARE),
    ("**.dedup.threshold", OPEN_SHARE),
    ("**.dedup.ngram", Int(1, 10)),
    ("**.dedup.num_perm", Int(16, 4096)),
    ("**.dedup.against[]", Choice("test", "val", "seed", "pool")),
    ("**.embed_dedup.threshold", OPEN_SHARE),  # embedding near-duplicates (filters/embed_dedup.py)
    ("**.embed_dedup.against[]", Choice("test", "val", "seed", "pool")),
    ("**.embed_dedup.batch_size", POS_INT),
    ("**.embed_dedup.within", BOOL),
    ("**.perplexity.max_perplexity", Num(0, lo_open=True, null=True)),
    ("**.perplexity.percentile", Num(0, 100, lo_open=True, null=True)),
    ("**.teacher.tau", Num(0, 1, also=("auto",))),
    ("**.teacher.target_precision", OPEN_SHARE),
    ("**.teacher.min_support", POS_INT),
    ("**.teacher.mode", Choice("keep", "relabel")),
    ("**.diversity.lambda_", SHARE),
    ("**.diversity.method", Choice("tfidf", "embedding")),
    ("**.judge.{max_concurrency,max_tokens}", POS_INT),  # filters.judge (conf/filters/judge.yaml)
    ("**.judge.seed", SEED),
    ("**.judge.max_retries", Int(0, 100)),
    ("**.judge.timeout_s", Num(0, 86_400, lo_open=True)),
    ("**.judge.{requests_per_minute,tokens_per_minute}", Num(0, lo_open=True, null=True)),
    ("**.judge.pricing.{input_per_mtok,output_per_mtok}", Num(0)),
    ("**.judge.limits.max_cost_usd", Num(0, null=True)),
    ("**.judge.limits.max_total_tokens", Int(1, null=True)),
    ("**.judge.endpoint", Choice("chat", "completions")),
    ("**.judge.on_unparsed", Choice("drop", "keep")),
    ("**.judge.structured_output", BOOL),
    # augment
    ("augment.analysis_embed", NONNEG_INT),  # posts embedded for embed_spread / embed_nn
    ("augment.n", COUNT),
    ("augment.generate_n", Rule("count", 0, null=True)),
    ("augment.seed_ratio", Num(0, lo_open=True, null=True)),
    ("augment.weight", Num(0)),
    ("augment.candidates", POS_INT),
    ("augment.{balance,match_real,distill,analysis}", BOOL),
    # trainer (Lightning)
    ("trainer.{accumulate_grad_batches,log_every_n_steps,num_nodes}", POS_INT),
    ("trainer.gradient_clip_val", Num(0, null=True)),
    ("trainer.devices", Int(-1, 4096, also=("auto",))),
    ("trainer.{deterministic,enable_progress_bar}", BOOL),
    ("trainer.accelerator", Choice("auto", "cpu", "gpu", "cuda", "mps", "tpu")),
    # studies (experiment=...)
    ("study.seeds[]", SEED),
    ("study.{seed_sizes,augment_n}[]", COUNT),
    ("study.classifiers.*.seeds[]", SEED),
    ("study.classifiers.*.{seed_sizes,augment_n}[]", COUNT),
    ("study.arms.*.augment_n[]", COUNT),  # an arm's own augment.n axis (sentisynth.study.parse_arm)
    # generic names anywhere (options of groups not listed above, e.g. a new generator's block)
    ("**.seed", SEED),
    ("**.random_state", SEED),
]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """`**.` any prefix, `*` one key, `{a,b}` alternatives, `[]` a list element."""
    out, rest = "", pattern
    if rest.startswith("**."):
        out, rest = r"(?:[^.]+\.)*", rest[3:]
    if rest.endswith(".**"):
        rest, tail = rest[:-3], r"(?:\.[^.]+)+"
    else:
        tail = ""
    parts = re.split(r"(\{[^}]*\}|\*)", rest)
    for part in parts:
        if part == "*":
            out += r"[^.\[]+"
        elif part.startswith("{"):
            out += "(?:" + "|".join(re.escape(p) for p in part[1:-1].split(",")) + ")"
        else:
            out += re.escape(part)
    return re.compile(out + tail + r"\Z")


@lru_cache(maxsize=1)
def _compiled() -> list[tuple[re.Pattern[str], Rule]]:
    return [(_pattern_regex(p), r) for p, r in RULES]


def rule_for(key: str) -> Rule | None:
    """The first rule whose pattern matches `key` (`data.fractions[]` for an element of a list)."""
    return next((rule for regex, rule in _compiled() if regex.match(key)), None)


def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf of a plain config; list elements as `key[]`."""
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if not prefix and key in SKIP:
                continue
            yield from leaves(v, key)
    elif isinstance(node, (list, tuple)):
        if not node:
            yield prefix, node
        for v in node:
            yield from leaves(v, prefix + "[]")
    else:
        yield prefix, node


def _plain(cfg: Any) -> Any:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=False)
    return cfg


def _is_interpolation(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def check_config(cfg: Any) -> None:
    """Raise one `ConfigError` for the first value a rule refuses (keys without a rule are not checked)."""
    for key, value in leaves(_plain(cfg)):
        if _is_interpolation(value) or isinstance(value, (list, tuple)):
            continue
        rule = rule_for(key)
        if rule is not None and not rule.allows(value):
            shown = key.replace("[]", "[i]") if key.endswith("[]") else key
            hint = f" ({rule.hint})" if rule.hint else ""
            raise ConfigError(f"{shown} must be {rule.describe()}, got {value!r}{hint}")


def uncovered(cfg: Any) -> list[str]:
    """Numeric keys of `cfg` no rule covers (the schema test fails on any)."""
    return sorted(
        {
            key
            for key, value in leaves(_plain(cfg))
            if isinstance(value, (int, float)) and not isinstance(value, bool) and rule_for(key) is None
        }
    )
