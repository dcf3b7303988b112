"""The Celery task names, shared by the worker (which registers them) and the API (which enqueues
by name): constants only, so importing this module imports nothing."""

RUN_JOB = "prefaudit.run_job"
"""The entry task: dispatches a sharded audit's canvas, or runs any other job itself."""

FEATURES = "prefaudit.features"
HEAD = "prefaudit.head"
TRAIN = "prefaudit.train"
GRADIENTS = "prefaudit.gradients"
REDUCE = "prefaudit.reduce"
SCORES = "prefaudit.scores"
FINALIZE = "prefaudit.finalize"
REWARDS = "prefaudit.rewards"
"""One outside reward model's margins on one block of training pairs (`reward_models`)."""

STAGE_TASKS: dict[str, str] = {
    "features": FEATURES,
    "head": HEAD,
    "train": TRAIN,
    "gradients": GRADIENTS,
    "reduce": REDUCE,
    "scores": SCORES,
    "finalize": FINALIZE,
    "rewards": REWARDS,
}
"""The task that runs each stage of a sharded audit's canvas."""
