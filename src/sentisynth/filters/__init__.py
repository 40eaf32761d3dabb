"""Quality filters for synthetic text: heuristic, dedup, perplexity, teacher, diversity; filter report.

chain = build_filter_chain(cfg.filters, FilterContext(data=data, cache_dir=..., budget_per_class=500))
result = chain.apply(samples)          # FilterResult(kept, rejected, report)
write_filter_report(result, out_dir)   # filter_report.json, rejected.jsonl, printed table
"""

from sentisynth.filters.base import Filter, FilterChain, FilterContext, FilterResult, MemoScorer
from sentisynth.filters.chain import build_filter, build_filter_chain
from sentisynth.filters.dedup import DedupFilter
from sentisynth.filters.diversity import DiversityFilter
from sentisynth.filters.embed_dedup import EmbedDedupFilter
from sentisynth.filters.heuristic import HeuristicFilter
from sentisynth.filters.leak import LeakGuard, guard_training_set
from sentisynth.filters.perplexity import CausalLMScorer, PerplexityFilter
from sentisynth.filters.report import format_table, log_filter_report, report_rows, write_filter_report
from sentisynth.filters.teacher import TeacherFilter, load_or_train_teacher, teacher_cache_key, teacher_for

__all__ = [
    "CausalLMScorer",
    "DedupFilter",
    "DiversityFilter",
    "EmbedDedupFilter",
    "Filter",
    "FilterChain",
    "FilterContext",
    "FilterResult",
    "HeuristicFilter",
    "LeakGuard",
    "MemoScorer",
    "PerplexityFilter",
    "TeacherFilter",
    "build_filter",
    "build_filter_chain",
    "format_table",
    "load_or_train_teacher",
    "log_filter_report",
    "report_rows",
    "guard_training_set",
    "teacher_cache_key",
    "teacher_for",
    "write_filter_report",
]
