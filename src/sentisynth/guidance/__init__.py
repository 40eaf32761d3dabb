"""SHAP guidance: per-class keywords (SHAP + TF-IDF differential) and exemplar posts -> guidance.json.

from sentisynth.guidance import build_guidance, fit_and_build, load_guidance
guidance = build_guidance(classifier_fitted_on_seed, data.seed, data.label_names, **keyword_cfg)
guidance, timings = fit_and_build(classifier, data.seed, data.label_names, keyword_cfg)  # fit + build, timed
"""

from sentisynth.guidance.core import ClassGuidance, Guidance, KeywordConfig, build_guidance, load_guidance
from sentisynth.guidance.ranking import Keyword
from sentisynth.guidance.stage import fit_and_build, run_guidance_stage

__all__ = [
    "ClassGuidance",
    "Guidance",
    "KeywordConfig",
    "Keyword",
    "build_guidance",
    "fit_and_build",
    "load_guidance",
    "run_guidance_stage",
]
