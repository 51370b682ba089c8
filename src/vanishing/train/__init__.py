"""Training: the config, the models around a recurrent layer, the loop, run folders and settings."""

from vanishing.train.config import TrainConfig
from vanishing.train.loop import History, evaluate, train
from vanishing.train.models import SequenceRegressor
from vanishing.train.rundir import make_run_dir
from vanishing.train.runtime import flush_denormal, torch_threads

__all__ = [
    "History",
    "SequenceRegressor",
    "TrainConfig",
    "evaluate",
    "flush_denormal",
    "make_run_dir",
    "torch_threads",
    "train",
]
