"""Train and evaluate one arm of the study (seed only, + real, + synthetic, ...).

python train.py data=tweet_eval_emotion classifier=tfidf_svm data.seed_size=full augment=none
python train.py -m data.seed_size=250,500,1000 augment=none,real seed=0,1,2
python train.py experiment=offline_tweeteval     # a whole study (conf/experiment/), resumable, with report
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sentisynth import quiet
from sentisynth.cli import check_generation_choices, precheck_overrides, register_resolvers, run_task

register_resolvers()
quiet.apply()  # third-party deprecation notices and Lightning's tips: shown with verbose=true


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    if cfg.get("study"):  # an experiment with a study block: all its cells, then the report
        from sentisynth.study import run_study

        return run_task(run_study, cfg)
    from sentisynth.train import run

    return run_task(run, cfg, checks=[check_generation_choices])


if __name__ == "__main__":
    precheck_overrides(Path(__file__).parent / "conf", "train", sys.argv[1:])
    main()
