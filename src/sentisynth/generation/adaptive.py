"""`guidance=adaptive`: generation in rounds, steered by the classifier the synthetic posts feed.

Round 0 generates 1/rounds of the budget with the seed's SHAP guidance. After each round the downstream
classifier (`cfg.classifier`) is refitted on seed + every post kept so far and scored on **validation only**
(per-class F1, confusion matrix). The next round's budget goes to the classes that hurt most
(`guidance.allocation`: `f1_deficit`, a share proportional to 1 - val F1 above a floor of
`guidance.floor_share` split evenly; or `uniform`), and its guidance is rebuilt: SHAP keywords of the
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
import logging
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
from sentisynth.utils import content_key, seed_everything, to_plain, write_json, write_jsonl

log = logging.getLogger(__name__)
ALLOCATIONS = ("f1_deficit", "uniform")


@dataclass(frozen=True)
class AdaptiveConfig:
    """The adaptive keys of conf/guidance/adaptive.yaml (the rest are the GuidanceStrategy's)."""

    rounds: int = 3
    patience: int = 1
    allocation: str = "f1_deficit"
    floor_share: float = 0.2
    contrastive_k: int = 5
    cv_folds: int = 5

    @classmethod
    def from_guidance(cls, node: dict) -> AdaptiveConfig:
        cfg = cls(**{f.name: node[f.name] for f in dataclasses.fields(cls) if f.name in node})
        if cfg.rounds < 1 or cfg.patience < 1 or cfg.allocation not in ALLOCATIONS:
            raise ValueError(
                f"guidance.rounds and guidance.patience must be >= 1 and guidance.allocation one of "
                f"{', '.join(ALLOCATIONS)} (got {cfg.rounds}, {cfg.patience}, {cfg.allocation!r})"
            )
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
    cfg: DictConfig, data: LowResourceData, clf: Any, scores: dict, wrong: np.ndarray, acfg: AdaptiveConfig
) -> tuple[dict, dict[str, dict]]:
    """The next round's guidance dict (re-explained keywords led by contrastive ones; exemplars from the
    seed's cross-validated errors) and, per class, why it is asked for."""
    from sentisynth.guidance import build_guidance

    names, keyword_cfg = list(data.label_names), to_plain(cfg.get("keywords")) or {}
    guidance = build_guidance(clf, data.seed, names, **keyword_cfg).to_dict()
    pairs = most_confused_on_val(scores["confusion"])
    exemplar_k = int(keyword_cfg.get("exemplar_k", 5))
    reasons = {}
    for c, name in enumerate(names):
        entry, b = guidance["classes"][name], pairs[c]
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
    return guidance, reasons


def round_set(
    cfg: DictConfig, data: LowResourceData, gen: Any, ctx: Any, guidance: dict, need: list[int], r: int
) -> tuple[list[dict], dict[str, float]]:
    """One round: an ordinary generation run for `need` with this round's guidance and seed (own caches)."""
    seed_r = int(cfg.seed) + 7919 * r
    ctx_r = dataclasses.replace(
        ctx, guidance=guidance, guidance_fingerprint=content_key(guidance), seed=seed_r
    )
    cfg_r = OmegaConf.merge(cfg, {"seed": seed_r})
    plan = pipeline.plan_generation(cfg_r, data, gen, ctx_r)
    final_key = content_key({"adaptive_round": r, "base": plan.final_key, "need": list(need)})
    plan = dataclasses.replace(
        plan,
        need=list(need),
        final_key=final_key,
        final_path=plan.final_path.parent.parent / final_key / plan.final_path.name,
    )
    cache_dir = Path(cfg.paths.cache_dir)
    final, _, stats, _ = pipeline.final_set(gen, ctx_r, plan, data, cache_dir, to_plain(cfg.generator))
    return final, stats


def tag(rows: list[dict], r: int, reasons: dict[str, dict], seen: set[str]) -> list[dict]:
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
        out.append({**row, "provenance": prov})
    return out


def first_round(
    data: LowResourceData, need: list[int], acfg: AdaptiveConfig
) -> tuple[list[int], dict[str, dict]]:
    total = -(-sum(need) // acfg.rounds)
    counts = largest_remainder(np.asarray(need, dtype=float) / max(sum(need), 1) * total, total)
    reasons = {n: {"why": "round 0: the plan's split, the seed's SHAP guidance"} for n in data.label_names}
    return counts.tolist(), reasons


def rounds_loop(
    cfg: DictConfig, data: LowResourceData, gen: Any, ctx: Any, need: list[int], acfg: AdaptiveConfig
) -> tuple[list[dict], list[dict], list[dict]]:
    """Every round until patience runs out; returns (every kept post, those up to the best round, the
    per-round history)."""
    per_round = -(-sum(need) // acfg.rounds)
    budget, reasons = first_round(data, need, acfg)
    guidance, kept, seen, history = ctx.guidance, [], set(), []
    base = val_scores(fit_current(cfg, data, []), data)
    history.append({"round": -1, "budget": [0] * len(need), "n_kept": 0, **_plain(base)})
    best, since = -1, 0
    for r in range(acfg.rounds):
        rows, stats = round_set(cfg, data, gen, ctx, guidance, budget, r)
        kept += tag(rows, r, reasons, seen)
        clf = fit_current(cfg, data, kept)
        scores = val_scores(clf, data)
        history.append(
            {
                "round": r,
                "budget": list(map(int, budget)),
                "n_kept": len(kept),
                "reasons": reasons,
                "generate_s": stats["seconds"],
                **_plain(scores),
            }
        )
        log.info("adaptive round %d: %d kept, val macro-F1 %.4f", r, len(kept), scores["macro_f1"])
        if best < 0 or scores["macro_f1"] > history[best + 1]["macro_f1"]:
            best, since = r, 0
        else:
            since += 1
        if since >= acfg.patience or r == acfg.rounds - 1:
            break
        wrong = seed_errors(cfg, data, kept, acfg.cv_folds, int(cfg.seed))
        guidance, reasons = steer(cfg, data, clf, scores, wrong, acfg)
        budget = allocate(per_round, scores["f1"], acfg.allocation, acfg.floor_share).tolist()
    return kept, [row for row in kept if row["provenance"]["round"] <= best], history


def _plain(scores: dict) -> dict:
    return {
        "macro_f1": scores["macro_f1"],
        "f1": [round(float(v), 6) for v in scores["f1"]],
        "confusion": scores["confusion"].tolist(),
    }


def adaptive_job(cfg: DictConfig, out: Path, tracker: Tracker) -> dict[str, float]:
    """`stage=generate` with `guidance=adaptive`: synthetic.jsonl (the best round's posts), adaptive.json
    (rounds: budgets, reasons, val F1 and confusion), metrics.json and timings.json."""
    t0 = time.perf_counter()
    seed_everything(int(cfg.seed))
    data: LowResourceData = build(cfg.data)
    names = list(data.label_names)
    acfg = AdaptiveConfig.from_guidance(to_plain(cfg.guidance))
    gen, ctx, t_prepare = pipeline.prepare_generator(cfg, data, out)
    need = pipeline.plan_budget(gen.budget, data.seed.class_counts(len(names)))
    every, final, history = rounds_loop(cfg, data, gen, ctx, need, acfg)
    write_jsonl(out / "synthetic.jsonl", final)
    write_jsonl(out / "adaptive_rounds.jsonl", every)  # every round's posts, also those after the best
    write_json(out / "adaptive.json", {"config": dataclasses.asdict(acfg), "need": need, "rounds": history})
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
    write_json(out / "metrics.json", metrics)
    secs = sum(h.get("generate_s", 0.0) for h in history)
    write_json(
        out / "timings.json",
        {"prepare_s": t_prepare, "generate_s": secs, "total_s": time.perf_counter() - t0},
    )
    tracker.log_metrics(metrics)
    print(
        f"adaptive: {len(final)} synthetic samples from rounds 0-{best['round']} -> {out / 'synthetic.jsonl'}",
        flush=True,
    )
    return metrics
