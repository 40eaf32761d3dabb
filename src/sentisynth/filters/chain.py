"""Build a filter chain from config: each named filter in order, then the leak guard when no dedup runs.

The chain builder (not `FilterChain`) adds the guard, so `filters.base` knows no concrete filter.
"""

from __future__ import annotations

from typing import Any

from sentisynth.filters.base import Filter, FilterChain, FilterContext
from sentisynth.filters.leak import LeakGuard
from sentisynth.utils import to_plain


def build_filter(name: str, node: Any) -> Filter:
    """Instantiate one filter config (`_target_` + options); nested configs (the teacher model) stay data."""
    from hydra.utils import instantiate

    node = dict(to_plain(node))
    node.pop("enabled", None)
    if "_target_" not in node:
        raise ValueError(f"filters.{name}: missing _target_ (e.g. sentisynth.filters.HeuristicFilter)")
    f = instantiate(node, _recursive_=False)
    f.name = name
    return f


def build_filter_chain(filters_cfg: Any, context: FilterContext, leak_guard: bool = True) -> FilterChain:
    """`filters_cfg` maps names to filter configs, applied in order; null entries are skipped. With real data
    in the context and no `dedup` filter, a `LeakGuard` goes last: a copy of a val/test post never survives."""
    cfg = filters_cfg if filters_cfg is not None else {}
    filters = [
        build_filter(str(name), node)
        for name, node in to_plain(cfg).items()
        if node is not None and node.get("enabled", True) is not False
    ]
    if leak_guard and context.data is not None and "dedup" not in {f.name for f in filters}:
        filters.append(LeakGuard())
    return FilterChain(filters, context)
