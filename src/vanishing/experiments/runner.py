"""Running many independent runs: in a local process pool, or as Ray tasks on a cluster.

Each run trains in its own folder `<suite>/runs/<name>/` (what `vanishing train` writes) and
returns an `Outcome`, a plain JSON-able record. Results are gathered as runs finish. A run
that raises, or whose worker dies, comes back as status 'error' with the reason; running
the suite again with resume continues every unfinished run from its checkpoints and keeps
the finished ones.

Runs are deterministic (one torch thread each), so the same seeds give the same outcomes on
the pool and on Ray.
"""

from __future__ import annotations

import json
import socket
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from vanishing.gradflow import lag_history
from vanishing.gradflow.monitor import rounded
from vanishing.train import RunConfig, TrainResult, read_jsonl, run

Outcome = dict[str, Any]
"""One run's outcome: name, task, T, model, seed, status, sequences, sequences_to_success,
final_loss, final_correct, seconds, message, curve [[sequences, loss, correct], ...],
gradflow (`gradflow_record`, or None)."""

HEATMAP_LAGS = 200
"""Lags an outcome keeps of each gradient-flow measurement: evenly spaced, lag 0 and the
last included."""
HEATMAP_STEPS = 100
"""Measurements an outcome keeps, evenly spaced, the first and the last included: with
HEATMAP_LAGS, at most 20k numbers (about 200 kB) per run whatever its length and budget."""

OnOutcome = Callable[[Outcome], None]


def longest_first(configs: Sequence[RunConfig]) -> list[RunConfig]:
    """The runs ordered by their largest possible cost (budget x longest sequence), so the
    longest start first and the pool finishes sooner."""
    return sorted(configs, key=lambda c: -c.train.budget * c.make_task().max_length)


def gradflow_record(metrics: Path, batch: int) -> dict[str, Any] | None:
    """The monitor's measurements in a run's metrics.jsonl, for the suite report's heatmap:
    {"key": its first layer and direction, "sequences": training sequences at each kept
    measurement (HEATMAP_STEPS at most), "lags": HEATMAP_LAGS at most, "norms": [[norm by
    kept lag] per kept measurement], 4 significant digits, None where not finite}; None if
    there are none."""
    history = lag_history(read_jsonl(metrics))  # whole lines (a kill may cut the last)
    if not history:
        return None
    key, (steps, norms) = next(iter(history.items()))  # (S, T) by lag
    rows, lags = _evenly(norms.shape[0], HEATMAP_STEPS), _evenly(norms.shape[1], HEATMAP_LAGS)
    kept = norms[np.ix_(rows, lags)]  # (S', L')
    return {
        "key": key,
        "sequences": [steps[r] * batch for r in rows],
        "lags": lags.tolist(),
        "norms": [rounded(row, digits=4) for row in kept],
    }


def _evenly(n: int, most: int) -> np.ndarray:
    """At most `most` indices of 0 .. n-1, evenly spaced, 0 and n-1 included."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


def outcome(
    config: RunConfig, result: TrainResult | None, message: str = "", folder: Path | None = None
) -> Outcome:
    """The record of one run (status 'error' when result is None); folder: the run's, for
    its gradient-flow measurements (`gradflow_record`)."""
    final = result.final if result is not None and result.evaluations else None
    metrics = None if folder is None or result is None else folder / "metrics.jsonl"
    return {
        "name": config.name,
        "task": config.task,
        "T": config.T,
        "model": config.model.label,
        "kind": config.model.model,
        "seed": config.train.seed,
        "budget": config.train.budget,
        "status": "error" if result is None else result.status,
        "sequences": None if result is None else result.sequences,
        "sequences_to_success": None if result is None else result.sequences_to_success,
        "final_loss": None if final is None else final.loss,
        "final_correct": None if final is None else final.correct,
        "seconds": None if result is None else result.seconds,
        "message": message if result is None else result.message,
        "curve": [] if result is None else [
            [e.sequences, e.loss, e.correct] for e in result.evaluations
        ],
        "gradflow": None if metrics is None else gradflow_record(metrics, config.train.batch),
    }  # fmt: skip


def execute(values: dict[str, Any], run_dir: str, resume: bool) -> Outcome:
    """Train one run (a RunConfig as a dict) in run_dir; never raises: errors are outcomes.

    With resume, a finished run (result.json) is not trained again and an unfinished one
    continues from its newest usable checkpoint.
    """
    config = RunConfig.from_dict(values)
    folder = Path(run_dir)
    try:
        if resume and (folder / "result.json").is_file():
            stored = json.loads((folder / "result.json").read_text(encoding="utf-8"))
            if stored.get("config") == asdict(config):
                return stored["outcome"]
        started = resume and (folder / "config.json").is_file()
        result = run(config, folder, resume=started, progress=False)
        record = outcome(config, result, folder=folder)
        saved = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        saved["outcome"] = record
        (folder / "result.json").write_text(json.dumps(saved), encoding="utf-8")
        return record
    except Exception as error:  # a failed run is reported, never dropped
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        return outcome(config, None, f"{detail} (run folder {folder})")


def run_pool(
    configs: Sequence[RunConfig], runs_dir: Path, workers: int, resume: bool, on_outcome: OnOutcome
) -> list[Outcome]:
    """Every run in a pool of `workers` processes; on_outcome() as each finishes."""
    outcomes = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {
            pool.submit(execute, asdict(c), str(runs_dir / c.name), resume): c
            for c in longest_first(configs)
        }
        for future in as_completed(futures):
            config = futures[future]
            try:
                record = future.result()
            except BrokenProcessPool as error:
                record = outcome(config, None, f"its worker process died ({error})")
            on_outcome(record)
            outcomes.append(record)
    return outcomes


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A ConnectionError naming address unless something listens at host:port."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConnectionError(f"--ray {address}: expected HOST:PORT, 'auto' or 'local'")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(f"cannot reach a Ray cluster at {address} ({error})") from None


def connect_ray(address: str, workers: int) -> bool:
    """Connect to Ray: HOST:PORT or 'auto' (an existing cluster) or 'local' (start Ray here
    with `workers` CPUs). An already initialised Ray is used as it is. Returns whether this
    call started the connection (then `ray.shutdown()` is the caller's). Raises ImportError
    without the optional extra `vanishing[ray]`, ConnectionError if the cluster is not there.
    """
    try:
        import ray
    except ImportError:
        raise ImportError("--ray needs the optional extra: pip install 'vanishing[ray]'") from None
    if ray.is_initialized():
        return False
    if address not in ("auto", "local"):
        check_reachable(address)
    options = dict(include_dashboard=False, log_to_driver=False)
    try:
        if address == "local":
            ray.init(num_cpus=workers, **options)
        else:
            ray.init(address=address, **options)
    except ConnectionError as error:
        raise ConnectionError(f"cannot reach a Ray cluster at {address} ({error})") from None
    return True


def run_ray(
    configs: Sequence[RunConfig], runs_dir: Path, resume: bool, on_outcome: OnOutcome
) -> list[Outcome]:
    """Every run as a Ray task (one CPU each) on the connected cluster (`connect_ray`);
    on_outcome() as each finishes. A task that fails or whose worker dies is an 'error'."""
    import ray

    remote = ray.remote(num_cpus=1, max_retries=0)(execute)
    pending = {
        remote.remote(asdict(c), str(runs_dir / c.name), resume): c for c in longest_first(configs)
    }
    outcomes = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            config = pending.pop(ref)
            try:
                record = ray.get(ref)
            except Exception as error:  # RayTaskError, WorkerCrashedError, ...
                detail = str(error).strip().splitlines()[0]
                record = outcome(config, None, f"its Ray task failed ({detail})")
            on_outcome(record)
            outcomes.append(record)
    return outcomes
