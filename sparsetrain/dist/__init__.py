"""Distributed training on Ray: parameter servers for row-sparse weights, data-parallel workers.

The only part of sparsetrain that imports Ray (the optional ``sparsetrain[dist]`` extra).

* :mod:`.server` — ``ParamServer`` actors, each holding a row range of every row_sparse weight
  (dense parameters on server 0) and applying the optimizer there with the lazy row-sparse update.
* :mod:`.kvstore` — ``DistKVStore``, the client behind ``kvstore.create('dist_sync'|'dist_async')``.
* :mod:`.worker` — ``Worker`` actors reading ``part_index/num_parts`` of the LibSVM file.
* :mod:`.driver` — ``train_distributed(config, workers, servers, address, max_restarts)``.
"""
from __future__ import annotations

__all__ = ["train_distributed", "require_ray", "ReusableActor"]


class ReusableActor:
    """A worker's or server's actor kept for the next run of the same Ray (``driver._Idle``): ``release`` lets go
    of the run's state, ``reset`` makes the actor anew in its process (a new process costs about a CPU second of
    imports and kernel loading)."""

    def reset(self, *args) -> None:
        """This actor made anew for another run (``args``: the constructor's), its process kept."""
        self.release()
        self.__init__(*args)

    def release(self) -> None:
        """Let go of the run's data and values: the actor waits for another run."""
        self.__dict__.clear()


def require_ray():
    """The ``ray`` module, or a one-line SparseTrainError telling how to install it."""
    import os

    # joining a cluster (--address) that answers but is no Ray head retries once a second, 20 times by
    # default: a few are enough to fail within seconds
    os.environ.setdefault("RAY_NUM_REDIS_GET_RETRIES", "5")
    try:
        import ray
    except ImportError:
        from ..base import SparseTrainError
        from ..kvstore import DIST_EXTRA_HINT

        raise SparseTrainError(DIST_EXTRA_HINT) from None
    return ray


def train_distributed(*args, **kwargs):
    from .driver import train_distributed as run

    return run(*args, **kwargs)


train_distributed.__doc__ = "See :func:`sparsetrain.dist.driver.train_distributed`."
