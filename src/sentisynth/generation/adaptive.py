"""`guidance=adaptive`: generation in rounds, steered by the classifier the synthetic posts feed.

Round 0 generates 1/rounds of the budget with the seed's SHAP guidance. After each round the downstream
classifier (`cfg.classifier`) is refitted on seed + every post kept so far and scored on **validation only**
(per-class F1, confusion matrix). The next round's budget goes to the classes that hurt most
(`guidance.allocation`: `f1_deficit`, a share proportional to 1 - val F1 above a floor of
`guidance.floor_share` split evenly; `uniform`), or to the confused pairs that hurt most (`pairs`: the
budget above the floor in proportion to the share of class a's val posts predicted as b, for each class's
`guidance.pair_slots` most confused partners; each pair is its own request set, steered against its
partner), and its guidance is rebuilt: SHAP keywords of the
refitted classifier (explained on the seed posts), led by contrastive keywords against the class each class
is most confused with on validation (words weighted more in the class's seed posts than in the other's),
and exemplars drawn from the seed posts the current classifier gets wrong under cross-validation on the
seed (each fold: seed minus the fold + the kept posts). Validation and test posts never reach a prompt:
only seed posts are exemplars or anchors. Generation stops when validation macro-F1 has not improved for
`guidance.patience` rounds; the set is what the best round had kept (so the loop chooses how many posts).
Each sample's provenance gets `round` and `reason` (target class, confused class, contrastive keywords,
val F1 that triggered it). Each round is an ordinary generation run (raw store + finished-set cache keyed
by its guidance, seed and budget), so an interrupted adaptive run resumes round by round.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import StratifiedKFold

from sentisynth.cli import build
from sentisynth.data import LowResourceData, Split, largest_remainder
from sentisynth.generation import pipeline
from sentisynth.text import tweet_tokenize
from sentisynth.tracking import Tracker
from sentisynth.utils import content_key, read_jsonl, seed_everything, to_plain, write_json, write_jsonl

log = logging.getLogger(__name__)
ALLOCATIONS = ("f1_deficit", "uniform", "pairs")
DELIVER = ("best", "all")


@dataclass(frozen=True)
class AdaptiveConfig:
    """The adaptive keys of conf/guidance/adaptive.yaml (the rest are the GuidanceStrategy's)."""

    rounds: int = 3
    patience: int = 1
    allocation: str = "f1_deficit"
    floor_share: float = 0.2
    contrastive_k: int = 5
    cv_folds: int = 5
    deliver: str = "best"  # best: the posts up to the best round (the loop picks how many) | all: every round
    pair_slots: int = 2  # allocation=pairs: each class's this many most confused partners get budget

    @classmethod
    def from_guidance(cls, node: dict) -> AdaptiveConfig:
        cfg = cls(**{f.name: node[f.name] for f in dataclasses.fields(cls) if f.name in node})
        if cfg.rounds < 1 or cfg.patience < 1 or cfg.allocation not in ALLOCATIONS:
            raise ValueError(
                f"guidance.rounds and guidance.patience must be >= 1 and guidance.allocation one of "
                f"{', '.join(ALLOCATIONS)} (got {cfg.rounds}, {cfg.patience}, {cfg.allocation!r})"
            )
        if cfg.deliver not in DELIVER:
            raise ValueError(f"guidance.deliver must be one of {', '.join(DELIVER)}, got {cfg.deliver!r}")
        if cfg.pair_slots < 1:
            raise ValueError(f"guidance.pair_slots must be >= 1, got {cfg.pair_slots}")
        if not 0.0 <= cfg.floor_share <= 1.0:
            raise ValueError(f"guidance.floor_share must be in [0, 1], got {cfg.floor_share}")
        return cfg


def allocate(total: int, f1: np.ndarray, rule: str, floor_share: float) -> np.ndarray:
    """Per-class counts summing to `total`: `uniform`, or `f1_deficit` (floor_share split evenly, the rest
    proportional to 1 - val F1, so the worst classes get most)."""
    n = len(f1)
    even = np.full(n, 1.0 / n)
    deficit = np.clip(1.0 - np.asarray(f1, dtype=float), 0.0, None)
    if rule == "uniform" or deficit.sum() <= 0:
        share = even
    else:
        share = floor_share * even + (1.0 - floor_share) * deficit / deficit.sum()
    return largest_remainder(share * total, total)


def allocate_pairs(
    total: int, conf: np.ndarray, floor_share: float, slots: int
) -> tuple[np.ndarray, np.ndarray]:
    """Budget for confused pairs: counts of shape (slots, classes) summing to `total` and partners of shape
    (classes, slots) (-1: none). Pair (a, b) hurts by the share of a's val posts predicted as b (summed over
    b that is 1 - recall of a); each class's `slots` worst partners share the budget above `floor_share` in
    proportion to it, and the floor is split evenly over the classes, steered against their worst partner
    (slot 0). With no confusion at all it is `uniform`."""
    conf = np.asarray(conf, dtype=float)
    n = len(conf)
    rate = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1.0)
    np.fill_diagonal(rate, 0.0)
    partners = np.full((n, slots), -1, dtype=int)
    weight = np.zeros((slots, n))
    for a in range(n):
        order = sorted(np.flatnonzero(rate[a] > 0), key=lambda b: (-rate[a, b], b))[:slots]
        for j, b in enumerate(order):
            partners[a, j], weight[j, a] = b, rate[a, b]
    share = np.zeros((slots, n))
    share[0] = 1.0 / n
    if weight.sum() > 0:
        share = floor_share * share + (1.0 - floor_share) * weight / weight.sum()
    counts = largest_remainder(share.ravel() * total, total).reshape(slots, n)
    return counts, partners


def with_kept(seed: Split, kept: list[dict]) -> tuple[list[str], np.ndarray]:
    texts = list(seed.texts) + [r["text"] for r in kept]
    labels = np.concatenate([np.asarray(seed.labels, dtype=int), [int(r["label"]) for r in kept]]).astype(int)
    return texts, labels


def fit_current(cfg: DictConfig, data: LowResourceData, kept: list[dict]) -> Any:
    """The downstream classifier on seed + the posts kept so far: a train arm's own classifier
    (`downstream_classifier`, set by conf/augment/synthetic.yaml), else `classifier` (generate.py's)."""
    texts, labels = with_kept(data.seed, kept)
    node = cfg.get("downstream_classifier") or cfg.classifier
    return build(node, n_classes=data.n_classes).fit(texts, labels)


def val_scores(clf: Any, data: LowResourceData) -> dict[str, Any]:
    """Validation only: per-class F1, macro-F1 and the confusion matrix (rows: gold, columns: predicted)."""
    from sentisynth.stats import f1_scores

    pred = np.asarray(clf.predict(list(data.val.texts)), dtype=int)
    gold = np.asarray(data.val.labels, dtype=int)
    f1 = f1_scores(gold, pred, data.n_classes)
    conf = confusion_matrix(gold, pred, labels=list(range(data.n_classes)))
    return {"f1": f1[:-1], "macro_f1": float(f1[-1]), "confusion": conf}


def seed_errors(
    cfg: DictConfig, data: LowResourceData, kept: list[dict], folds: int, seed: int
) -> np.ndarray:
    """Seed rows the current classifier gets wrong under cross-validation on the seed (each fold's model:
    the rest of the seed + the kept posts); the val and test splits are never used."""
    labels = np.asarray(data.seed.labels, dtype=int)
    k = min(folds, int(np.bincount(labels).max()))
    if k < 2:
        return np.zeros(0, dtype=int)
    wrong = []
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for train, held in splitter.split(np.zeros(len(labels)), labels):
        try:
            clf = fit_current(cfg, dataclasses.replace(data, seed=data.seed.subset(train)), kept)
        except ValueError:  # a fold with a single class and nothing kept
            continue
        pred = np.asarray(clf.predict([data.seed.texts[i] for i in held]), dtype=int)
        wrong += [int(i) for i, p in zip(held, pred) if p != labels[i]]
    return np.array(sorted(wrong), dtype=int)


def contrastive_terms(seed: Split, c: int, b: int, k: int, keyword_cfg: dict) -> list[tuple[str, float]]:
    """Up to k words that push to class c rather than b: mean TF-IDF weight in c's seed posts minus in b's
    (> 0), among words of c's posts that pass the keyword exclusions (stop words, numbers, ...)."""
    from sentisynth.guidance import KeywordConfig
    from sentisynth.guidance.ranking import excluded_terms

    kc = KeywordConfig.from_kwargs(**keyword_cfg)
    vec = TfidfVectorizer(tokenizer=tweet_tokenize, token_pattern=None, lowercase=False, sublinear_tf=True)
    X = vec.fit_transform(list(seed.texts)).tocsr()
    labels = np.asarray(seed.labels, dtype=int)
    diff = np.asarray(X[labels == c].mean(axis=0)).ravel() - np.asarray(X[labels == b].mean(axis=0)).ravel()
    terms = vec.get_feature_names_out()
    keep = ~excluded_terms(
        terms, kc.exclude_stop_words, kc.exclude_numbers, kc.exclude_punctuation, kc.extra_stop_words
    )
    order = sorted(np.flatnonzero(keep & (diff > 0)), key=lambda j: (-diff[j], terms[j]))
    return [(str(terms[j]), float(diff[j])) for j in order[:k]]


def most_confused_on_val(conf: np.ndarray) -> list[int]:
    """Per class: the class its val posts are most often predicted as (-1 when none is misclassified)."""
    off = conf.astype(float).copy()
    np.fill_diagonal(off, -1)
    return [int(np.argmax(row)) if row.max() > 0 else -1 for row in off]


def steer(
    cfg: DictConfig,
    data: LowResourceData,
    clf: Any,
    scores: dict,
    wrong: np.ndarray,
    acfg: AdaptiveConfig,
    partners: list[list[int]] | None = None,
) -> list[tuple[dict, dict[str, dict]]]:
    """The next round's guidance dicts (re-explained keywords led by contrastive ones; exemplars from the
    seed's cross-validated errors) and, per class, why it is asked for: one per slot of `partners` (per
    class, the partner each slot steers against; default: one slot, each class's most confused class)."""
    import copy

    from sentisynth.guidance import build_guidance

    names, keyword_cfg = list(data.label_names), to_plain(cfg.get("keywords")) or {}
    explained = build_guidance(clf, data.seed, names, **keyword_cfg).to_dict()
    if partners is None:
        partners = [[b] for b in most_confused_on_val(scores["confusion"])]
    exemplar_k = int(keyword_cfg.get("exemplar_k", 5))
    out = []
    for j in range(max(len(p) for p in partners)):
        guidance, reasons = copy.deepcopy(explained), {}
        for c, name in enumerate(names):
            entry, b = guidance["classes"][name], partners[c][j] if j < len(partners[c]) else -1
            contrast = contrastive_terms(data.seed, c, b, acfg.contrastive_k, keyword_cfg) if b >= 0 else []
            top = max([float(k["score"]) for k in entry["keywords"]] + [1.0])
            lead = [
                {
                    "term": t,
                    "shap": 0.0,
                    "tfidf_diff": v,
                    "score": top,
                    "source": "contrastive",
                    "against": names[b],
                }
                for t, v in contrast
            ]
            terms = {k["term"] for k in lead}
            entry["keywords"] = lead + [k for k in entry["keywords"] if k["term"] not in terms]
            rows = [int(r) for r in wrong if int(data.seed.labels[r]) == c][:exemplar_k]
            if rows:
                entry["exemplars"] = [
                    {"text": data.seed.texts[r], "index": int(data.seed.index[r])} for r in rows
                ]
            reasons[name] = {
                "val_f1": round(float(scores["f1"][c]), 6),
                "confused_with": names[b] if b >= 0 else None,
                "n_confused_val": int(scores["confusion"][c, b]) if b >= 0 else 0,
                "contrastive": [t for t, _ in contrast],
                "exemplars": "seed_cv_errors" if rows else "shap",
            }
            if acfg.allocation == "pairs":
                reasons[name]["pair"] = [name, names[b]] if b >= 0 else None
        out.append((guidance, reasons))
    return out


def round_set(
    cfg: DictConfig,
    data: LowResourceData,
    gen: Any,
    ctx: Any,
    guidance: dict,
    need: list[int],
    r: int,
    slot: int = 0,
) -> tuple[list[dict], dict[str, float], str]:
    """One round (or one pair slot of it): an ordinary generation run for `need` with this guidance and seed
    (own caches). Returns its posts, its generation stats and its finished-set cache key (where its filter
    report is)."""
    seed_r = int(cfg.seed) + 7919 * r + 104729 * slot
    ctx_r = dataclasses.replace(
        ctx, guidance=guidance, guidance_fingerprint=content_key(guidance), seed=seed_r
    )
    cfg_r = OmegaConf.merge(cfg, {"seed": seed_r})
    plan = pipeline.plan_generation(cfg_r, data, gen, ctx_r)
    key = {"adaptive_round": r, "base": plan.final_key, "need": list(need)}
    final_key = content_key(key if slot == 0 else {**key, "slot": slot})  # slot 0: the keys made before slots
    plan = dataclasses.replace(
        plan,
        need=list(need),
        final_key=final_key,
        final_path=plan.final_path.parent.parent / final_key / plan.final_path.name,
    )
    cache_dir = Path(cfg.paths.cache_dir)
    final, _, stats, _ = pipeline.final_set(gen, ctx_r, plan, data, cache_dir, to_plain(cfg.generator))
    return final, stats, final_key


def tag(rows: list[dict], r: int, reasons: dict[str, dict], seen: set[str], slot: int = 0) -> list[dict]:
    """New texts only (not kept in an earlier round), each with its round and why it was asked for."""
    out = []
    for row in rows:
        key = pipeline.norm_key(row["text"])
        if key in seen:
            continue
        seen.add(key)
        prov = {
            **row.get("provenance", {}),
            "round": r,
            "reason": {"class": row["label_name"], **reasons[row["label_name"]]},
        }
        if slot:
            prov["slot"] = slot
        out.append({**row, "provenance": prov})
    return out


def first_round(
    data: LowResourceData, need: list[int], acfg: AdaptiveConfig
) -> tuple[list[int], dict[str, dict]]:
    total = -(-sum(need) // acfg.rounds)
    counts = largest_remainder(np.asarray(need, dtype=float) / max(sum(need), 1) * total, total)
    reasons = {n: {"why": "round 0: the plan's split, the seed's SHAP guidance"} for n in data.label_names}
    return counts.tolist(), reasons


def next_requests(
    cfg: DictConfig,
    data: LowResourceData,
    clf: Any,
    scores: dict,
    kept: list[dict],
    per_round: int,
    acfg: AdaptiveConfig,
) -> list[tuple[list[int], dict, dict[str, dict]]]:
    """The next round's request sets, each (per-class counts, guidance, reasons): one for a class rule, one
    per pair slot for `pairs` (slot j: each class steered against its j-th most confused partner)."""
    wrong = seed_errors(cfg, data, kept, acfg.cv_folds, int(cfg.seed))
    if acfg.allocation != "pairs":
        ((guidance, reasons),) = steer(cfg, data, clf, scores, wrong, acfg)
        budget = allocate(per_round, scores["f1"], acfg.allocation, acfg.floor_share).tolist()
        return [(budget, guidance, reasons)]
    counts, partners = allocate_pairs(per_round, scores["confusion"], acfg.floor_share, acfg.pair_slots)
    steered = steer(cfg, data, clf, scores, wrong, acfg, partners.tolist())
    return [(counts[j].tolist(), g, rsn) for j, (g, rsn) in enumerate(steered) if counts[j].sum() > 0]


def round_keys(h: dict) -> list[str]:
    """A round's finished-set keys: one per request set (`final_keys`; older histories: `final_key`)."""
    return list(h.get("final_keys") or ([h["final_key"]] if h.get("final_key") else []))


def rounds_loop(
    cfg: DictConfig, data: LowResourceData, gen: Any, ctx: Any, need: list[int], acfg: AdaptiveConfig
) -> tuple[list[dict], list[dict], list[dict]]:
    """Every round until patience runs out; returns (every kept post, those up to the best round, the
    per-round history)."""
    per_round = -(-sum(need) // acfg.rounds)
    budget, reasons = first_round(data, need, acfg)
    requests = [(budget, ctx.guidance, reasons)]
    kept, seen, history = [], set(), []
    names = list(data.label_names)
    base = val_scores(fit_current(cfg, data, []), data)
    history.append({"round": -1, "budget": [0] * len(need), "n_kept": 0, **_plain(base)})
    best, since = -1, 0
    for r in range(acfg.rounds):
        t_round, keys, generate_s = time.perf_counter(), [], 0.0
        for slot, (budget, guidance, reasons) in enumerate(requests):
            rows, stats, final_key = round_set(cfg, data, gen, ctx, guidance, budget, r, slot)
            kept += tag(rows, r, reasons, seen, slot)
            keys.append(final_key)
            generate_s += stats["seconds"]
        round_s = time.perf_counter() - t_round
        clf = fit_current(cfg, data, kept)
        scores = val_scores(clf, data)
        entry = {
            "round": r,
            "budget": [int(sum(req[0][c] for req in requests)) for c in range(len(need))],
            "n_kept": len(kept),
            "reasons": requests[0][2],
            "generate_s": generate_s,
            "round_s": round_s,  # the round's generation runs: generation, filtering, cache reads
            "final_key": keys[0],
            **_plain(scores),
        }
        if len(requests) > 1 or acfg.allocation == "pairs":
            entry["final_keys"] = keys
            entry["pair_budget"] = [
                {"class": c, "against": rsn[c].get("confused_with"), "n": int(n), "slot": j}
                for j, (bud, _, rsn) in enumerate(requests)
                for c, n in zip(names, bud)
                if n > 0
            ]
        history.append(entry)
        log.info("adaptive round %d: %d kept, val macro-F1 %.4f", r, len(kept), scores["macro_f1"])
        if best < 0 or scores["macro_f1"] > history[best + 1]["macro_f1"]:
            best, since = r, 0
        else:
            since += 1
        if (since >= acfg.patience and acfg.deliver == "best") or r == acfg.rounds - 1:
            break  # deliver=all runs every round: the set has the full budget, like the other arms
        requests = next_requests(cfg, data, clf, scores, kept, per_round, acfg)
    return (
        kept,
        kept if acfg.deliver == "all" else [r for r in kept if r["provenance"]["round"] <= best],
        history,
    )


def _plain(scores: dict) -> dict:
    return {
        "macro_f1": scores["macro_f1"],
        "f1": [round(float(v), 6) for v in scores["f1"]],
        "confusion": scores["confusion"].tolist(),
    }


LOOP_FILES = ("synthetic.jsonl", "adaptive_rounds.jsonl", "adaptive.json", "filter_report.json")


def loop_key(cfg: DictConfig, data: LowResourceData, gen: Any, ctx: Any, need: list[int], acfg: Any) -> str:
    """The whole loop's cache key: round 0's finished-set key (generator, guidance and its content, sampling,
    seed, seed data, budget, filters), the loop's settings, the classifier it refits and the validation posts
    it scores on; everything later rounds depend on follows from these."""
    return content_key(
        {
            "adaptive": {  # deliver=best (the default) keeps the keys made before it existed
                k: v
                for k, v in dataclasses.asdict(acfg).items()
                if (k, v) != ("deliver", "best") and (k != "pair_slots" or acfg.allocation == "pairs")
            },  # and pair_slots only where it is used
            "need": list(need),
            "round_0": pipeline.plan_generation(cfg, data, gen, ctx).final_key,
            "downstream": to_plain(cfg.get("downstream_classifier") or cfg.classifier),
            "keywords": to_plain(cfg.get("keywords")),
            "val": data.val.fingerprint(),
        }
    )


def write_cost(out: Path, cache_dir: Path, history: list[dict], n_delivered: int) -> None:
    """`filter_report.json` for the whole loop, in the shape of one generation run's (what the report's
    generation-cost and filter-acceptance tables read): every round's report (in its finished-set cache
    entry) summed. `adaptive.n_delivered` is the size of the set the loop returns (the best round's posts): the
    report prices the loop per delivered post, since the posts of rounds after the best one were paid for too."""
    from sentisynth.filters.report import merge_reports
    from sentisynth.utils import read_json

    keys = [k for h in history for k in round_keys(h)]
    paths = [cache_dir / "generation" / "final" / k / "filter_report.json" for k in keys]
    reports = [read_json(p) for p in paths if p.is_file()]
    if not reports:
        return  # a generator run without filters writes none
    merged = merge_reports(reports)
    merged["adaptive"] = {
        "rounds": sum(1 for h in history if round_keys(h)),
        "n_delivered": n_delivered,
        "round_keys": keys,
    }
    write_json(out / "filter_report.json", merged)


def loop_timings(
    history: list[dict], t_prepare: float, loop_s: float | None, total_s: float
) -> dict[str, Any]:
    """timings.json: generation seconds summed over rounds (0 for a round read from the cache), `steer_s` (the
    loop's own work: refits, validation scores, cross-validation on the seed, SHAP; 0 when the whole loop came
    from the cache, `loop_s` None), and `final_key`, the set's identity for the report's cost table."""
    rounds = [h for h in history if round_keys(h)]
    made = loop_s is not None
    return {
        "prepare_s": t_prepare,
        "generate_s": sum(h.get("generate_s", 0.0) for h in rounds) if made else 0.0,
        "steer_s": max(loop_s - sum(h.get("round_s", 0.0) for h in rounds), 0.0) if made else 0.0,
        "total_s": total_s,
        "final_key": content_key({"adaptive_rounds": [k for h in rounds for k in round_keys(h)]}),
        "loop_cache_hit": not made,
    }


def run_or_reuse(
    cfg: DictConfig,
    data: LowResourceData,
    gen: Any,
    ctx: Any,
    need: list[int],
    acfg: AdaptiveConfig,
    out: Path,
) -> tuple[list[dict], list[dict], float | None]:
    """The loop's files in `out` (LOOP_FILES), from its sealed cache entry or made now and cached, so a study's
    cell reuses what its launcher's prepare job made instead of refitting every round again. Returns the set,
    the rounds' history and the loop's seconds (None: from the cache)."""
    from sentisynth.cache import is_sound, publish

    entry = Path(cfg.paths.cache_dir) / "generation" / "adaptive" / loop_key(cfg, data, gen, ctx, need, acfg)
    if is_sound(entry, "adaptive loop"):
        log.info("adaptive: the whole loop from the cache: %s", entry)
        for name in LOOP_FILES:
            if (entry / name).is_file():
                shutil.copyfile(entry / name, out / name)
        history = json.loads((out / "adaptive.json").read_text(encoding="utf-8"))["rounds"]
        return read_jsonl(out / "synthetic.jsonl"), history, None
    t_loop = time.perf_counter()
    every, final, history = rounds_loop(cfg, data, gen, ctx, need, acfg)
    loop_s = time.perf_counter() - t_loop
    write_jsonl(out / "synthetic.jsonl", final)
    write_jsonl(out / "adaptive_rounds.jsonl", every)  # every round's posts, also those after the best
    write_json(out / "adaptive.json", {"config": dataclasses.asdict(acfg), "need": need, "rounds": history})
    write_cost(out, Path(cfg.paths.cache_dir), history, len(final))
    tmp = entry.parent / f".{entry.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in LOOP_FILES:
        if (out / name).is_file():
            shutil.copyfile(out / name, tmp / name)
    publish(tmp, entry, {"samples": len(final)})
    return final, history, loop_s


def adaptive_job(cfg: DictConfig, out: Path, tracker: Tracker) -> dict[str, float]:
    """`stage=generate` with `guidance=adaptive`: synthetic.jsonl (the best round's posts), adaptive.json
    (rounds: budgets, reasons, val F1 and confusion), filter_report.json (every round's, summed),
    metrics.json and timings.json."""
    t0 = time.perf_counter()
    seed_everything(int(cfg.seed))
    data: LowResourceData = build(cfg.data)
    names = list(data.label_names)
    acfg = AdaptiveConfig.from_guidance(to_plain(cfg.guidance))
    gen, ctx, t_prepare = pipeline.prepare_generator(cfg, data, out)
    need = pipeline.plan_budget(gen.budget, data.seed.class_counts(len(names)))
    final, history, loop_s = run_or_reuse(cfg, data, gen, ctx, need, acfg, out)
    counts = np.bincount([int(r["label"]) for r in final], minlength=len(names))
    best = max((h for h in history if h["round"] >= 0), key=lambda h: (h["macro_f1"], -h["round"]))
    metrics: dict[str, float] = {
        "generate/n_samples": len(final),
        "generate/n_target": int(sum(need)),
        "generate/budget_met": int(len(final) >= sum(need)),
        **{f"generate/n/{n}": int(counts[c]) for c, n in enumerate(names)},
        "adaptive/best_round": best["round"],
        "adaptive/rounds_run": len(history) - 1,
    }
    for h in history:
        tag_ = "seed_only" if h["round"] < 0 else f"round_{h['round']}"
        metrics[f"adaptive/{tag_}/val_macro_f1"] = h["macro_f1"]
        metrics[f"adaptive/{tag_}/n_kept"] = h["n_kept"]
        metrics.update({f"adaptive/{tag_}/budget/{n}": int(b) for n, b in zip(names, h["budget"])})
        for pb in h.get("pair_budget", []):  # allocation=pairs: posts of class a asked for against b
            metrics[f"adaptive/{tag_}/pair_budget/{pb['class']}_vs_{pb['against']}"] = pb["n"]
    write_json(out / "metrics.json", metrics)
    write_json(out / "timings.json", loop_timings(history, t_prepare, loop_s, time.perf_counter() - t0))
    tracker.log_metrics(metrics)
    print(
        f"adaptive: {len(final)} synthetic samples from rounds 0-"
        f"{len(history) - 2 if acfg.deliver == 'all' else best['round']} -> {out / 'synthetic.jsonl'}",
        flush=True,
    )
    return metrics
