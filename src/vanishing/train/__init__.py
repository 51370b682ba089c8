"""Training: the one trainer (`fit`), its configs, models, data sources, checkpoints, runs.

Read in this order: `config.py` (TrainConfig), `models.py` (SequenceModel, ModelConfig,
build_model), `init.py` (forget bias, chrono), `optim.py`, `data.py` (TaskStream,
TensorData), `checkpoint.py`, `metrics.py`, `loop.py` (fit), `run.py` (a run in its folder).
"""

from vanishing.train.checkpoint import CheckpointError
from vanishing.train.config import OPTIMIZERS, TrainConfig
from vanishing.train.data import TaskStream, TensorData
from vanishing.train.init import chrono_, forget_bias_
from vanishing.train.loop import STATUSES, TrainResult, fit
from vanishing.train.metrics import Evaluation, evaluate, read_jsonl
from vanishing.train.models import MODELS, ModelConfig, SequenceModel, build_model
from vanishing.train.optim import make_optimizer
from vanishing.train.run import RunConfig, load_config, resume_run, run
from vanishing.train.rundir import make_run_dir
from vanishing.train.runtime import flush_denormal, torch_threads

__all__ = [
    "MODELS",
    "OPTIMIZERS",
    "STATUSES",
    "CheckpointError",
    "Evaluation",
    "ModelConfig",
    "RunConfig",
    "SequenceModel",
    "TaskStream",
    "TensorData",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "chrono_",
    "evaluate",
    "fit",
    "flush_denormal",
    "forget_bias_",
    "load_config",
    "make_optimizer",
    "make_run_dir",
    "read_jsonl",
    "resume_run",
    "run",
    "torch_threads",
]
