"""Long-time-lag tasks: seeded generators of (x (T, B, I), target) batches."""

from vanishing.tasks.adding import ADDING_BASELINE_MSE, adding_problem

__all__ = ["ADDING_BASELINE_MSE", "adding_problem"]
