"""Early stopping on the held-out loss, with the best weights restored (Keras' EarlyStopping).

A callback of `fit` (its `on_evaluation`): after each evaluation it keeps a copy of the
weights if the held-out loss improved on the best so far by more than `min_delta`, and asks
the trainer to stop once `patience` evaluations in a row have not improved. `restore(model)`
puts the best weights back (Keras' restore_best_weights=True).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from vanishing.train.config import check_int
from vanishing.train.metrics import Evaluation


class EarlyStopping:
    """Stop after `patience` evaluations without a held-out loss below best - min_delta."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        check_int("patience", patience, 1)
        if not (math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta}")
        self.patience, self.min_delta = patience, min_delta
        self.best_loss = math.inf
        self.best_step: int | None = None
        self.best_state: dict[str, Tensor] | None = None
        self.waited = 0

    def on_evaluation(self, evaluation: Evaluation, model: nn.Module) -> bool:
        """Keep the weights if the loss improved; True once `patience` evaluations did not."""
        if math.isfinite(evaluation.loss) and evaluation.loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_step, self.waited = evaluation.loss, evaluation.step, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.waited += 1
        return self.waited >= self.patience

    def restore(self, model: nn.Module) -> bool:
        """Load the best weights seen into model; False if no evaluation improved on +inf."""
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True
