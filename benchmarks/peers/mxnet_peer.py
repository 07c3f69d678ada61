"""MXNet 1.9.1 peer. Runs as a script under the python of ``benchmarks/_work/mxnet-venv``
(created by ``benchmarks/mxnet_env.sh``; MXNet 1.9.1 installs only next to numpy 1.23.x)::

    benchmarks/_work/mxnet-venv/bin/python benchmarks/peers/mxnet_peer.py FUNC '{"kw": ...}'

prints one ``BENCH_JSON {...}`` line, like ``benchmarks._child``. Workloads:

* ``seed``  -- the seed tutorial's training loop line for line (1000x100 CSR at density 0.01,
  batch 1, 10 epochs of ``forward / update_metric / backward / update``); µs per step.
* ``parse`` -- ``mx.io.LibSVMIter`` over a file, MB/s.
* ``train`` -- one epoch of a linear model (``sparse.dot(csr, row_sparse) + bias`` into
  ``LinearRegressionOutput`` or ``LogisticRegressionOutput``) with the Module API and plain SGD
  (``rescale_grad = 1/batch``), fed either by ``LibSVMIter`` straight from the file (the epoch
  includes MXNet's parsing, as MXNet users train) or by CSR batches sliced in memory beforehand
  (``NDArrayIter`` over a large CSR slices through a dense storage fallback of the whole matrix:
  seconds per batch and GBs of memory, so it is not used here).

Nothing from sparsetrain is imported here; in the parent process only ``venv_python`` and
``command`` are used.
"""
from __future__ import annotations

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(ROOT, "benchmarks", "_work", "mxnet-venv")
ENV_SCRIPT = os.path.join(ROOT, "benchmarks", "mxnet_env.sh")


def venv_python() -> str:
    return os.path.join(VENV, "bin", "python")


def command(func: str, kwargs: dict) -> list[str]:
    return [venv_python(), os.path.abspath(__file__), func, json.dumps(kwargs)]


# --------------------------------------------------------------------------------------------
# everything below runs inside the MXNet venv


def _mx():
    import warnings

    warnings.filterwarnings("ignore")
    import mxnet as mx

    return mx


def _warm_page_cache(path: str) -> None:
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(16 << 20)
        while f.readinto(buf):
            pass


def seed(epochs: int = 10, seed: int = 0) -> dict:
    mx = _mx()
    import numpy as np

    mx.random.seed(seed)
    np.random.seed(seed)
    # ---- the seed tutorial, "Training with Module APIs" -------------------------------------
    # Random training data
    feature_dimension = 100
    train_data = mx.test_utils.rand_ndarray((1000, feature_dimension), 'csr', 0.01)
    target_weight = mx.nd.arange(1, feature_dimension + 1).reshape((feature_dimension, 1))
    train_label = mx.nd.dot(train_data, target_weight)
    batch_size = 1
    train_iter = mx.io.NDArrayIter(train_data, train_label, batch_size,
                                   last_batch_handle='discard', label_name='label')
    initializer = mx.initializer.Normal(sigma=0.01)
    X = mx.sym.Variable('data', stype='csr')
    Y = mx.symbol.Variable('label')
    weight = mx.symbol.Variable('weight', stype='row_sparse', shape=(feature_dimension, 1),
                                init=initializer)
    bias = mx.symbol.Variable('bias', shape=(1, ))
    pred = mx.sym.broadcast_add(mx.sym.sparse.dot(X, weight), bias)
    lro = mx.sym.LinearRegressionOutput(data=pred, label=Y, name="lro")
    # Create module
    mod = mx.mod.Module(symbol=lro, data_names=['data'], label_names=['label'])
    # Allocate memory by giving the input data and label shapes
    mod.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label)
    # Initialize parameters by random numbers
    mod.init_params(initializer=initializer)
    # Use SGD as the optimizer, which performs sparse update on "row_sparse" weight
    sgd = mx.optimizer.SGD(learning_rate=0.05, rescale_grad=1.0/batch_size, momentum=0.9)
    mod.init_optimizer(optimizer=sgd)
    # Use mean square error as the metric
    metric = mx.metric.create('MSE')
    # Train 10 epochs
    history = []
    steps = 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        train_iter.reset()
        metric.reset()
        for batch in train_iter:
            mod.forward(batch, is_train=True)       # compute predictions
            mod.update_metric(metric, batch.label)  # accumulate prediction accuracy
            mod.backward()                          # compute gradients
            mod.update()                            # update parameters
            steps += 1
        history.append(metric.get()[1])
    mx.nd.waitall()
    sec = time.perf_counter() - t0
    # ------------------------------------------------------------------------------------------
    return {"train_seconds": sec, "epoch_seconds": sec / epochs, "steps": steps,
            "us_per_step": sec / steps * 1e6, "final_loss": history[-1], "loss_name": "mse",
            "history": history, "version": mx.__version__}


def parse(path: str, num_features: int, batch_size: int = 1024) -> dict:
    # batch x num_features must stay below 2**31 (MXNet checks a dense shape of that size)
    mx = _mx()
    size = os.path.getsize(path)
    _warm_page_cache(path)
    t0 = time.perf_counter()
    it = mx.io.LibSVMIter(data_libsvm=path, data_shape=(num_features,), batch_size=batch_size,
                          round_batch=True)
    rows = 0
    for batch in it:
        rows += batch.data[0].shape[0] - batch.pad
    mx.nd.waitall()
    sec = time.perf_counter() - t0
    return {"parse_seconds": sec, "mb_per_s": size / 1e6 / sec, "bytes": size, "rows": rows,
            "batch_size": batch_size, "version": mx.__version__}


def train(path: str, task: str, lr: float, batch_size: int = 256, epochs: int = 1,
          iterator: str = "libsvm", **_) -> dict:
    mx = _mx()
    import numpy as np

    sys.path.insert(0, ROOT)
    from benchmarks import _data

    mx.random.seed(0)
    data, indices, indptr, y, shape = _data.load_arrays(path)
    n, d = shape
    t0 = time.perf_counter()
    if iterator == "libsvm":
        it = mx.io.LibSVMIter(data_libsvm=path, data_shape=(d,), batch_size=batch_size,
                              round_batch=True)
    else:
        # Pre-sliced in-memory batches. (NDArrayIter over a CSR slices through a dense storage
        # fallback of the whole matrix: ~5 s per batch and GBs of RSS at 20k x 100k.)
        # Like LibSVMIter's round_batch, the last batch is filled up from the start (pad).
        idx64 = indices.astype(np.int64)
        batches = []
        for s in range(0, n, batch_size):
            rows = np.arange(s, s + batch_size) % n
            e = min(s + batch_size, n)
            if e - s == batch_size:
                a, b = int(indptr[s]), int(indptr[e])
                bd, bi, bp = data[a:b], idx64[a:b], indptr[s:e + 1] - a
            else:
                lens = np.diff(indptr)[rows]
                take = np.concatenate([np.arange(indptr[r], indptr[r + 1]) for r in rows])
                bd, bi = data[take], idx64[take]
                bp = np.concatenate([[0], np.cumsum(lens)])
            csr = mx.nd.sparse.csr_matrix((bd, bi, bp), shape=(batch_size, d), dtype="float32")
            batches.append(mx.io.DataBatch([csr], [mx.nd.array(y[rows])],
                                          pad=batch_size - (e - s)))
        it = _Batches(batches, d, batch_size, mx)
        mx.nd.waitall()
    prep_s = time.perf_counter() - t0

    X = mx.sym.Variable("data", stype="csr")
    Y = mx.sym.Variable("softmax_label")
    weight = mx.sym.Variable("weight", stype="row_sparse", shape=(d, 1), init=mx.init.Zero())
    bias = mx.sym.Variable("bias", shape=(1,))
    pred = mx.sym.broadcast_add(mx.sym.sparse.dot(X, weight), bias)
    if task == "regression":
        out = mx.sym.LinearRegressionOutput(data=pred, label=Y, name="out")
        metric = mx.metric.create("MSE")
    else:
        out = mx.sym.LogisticRegressionOutput(data=pred, label=Y, name="out")
        metric = mx.metric.create("MAE")  # cheap running metric; final log loss computed below
    mod = mx.mod.Module(symbol=out, data_names=["data"], label_names=["softmax_label"])
    mod.bind(data_shapes=it.provide_data, label_shapes=it.provide_label)
    mod.init_params(initializer=mx.init.Zero())
    sgd = mx.optimizer.SGD(learning_rate=lr, rescale_grad=1.0 / batch_size, momentum=0.0)
    mod.init_optimizer(optimizer=sgd)

    steps = 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        if epoch:  # LibSVMIter.reset() before the first pass yields extra batches
            it.reset()
        metric.reset()
        for batch in it:
            mod.forward(batch, is_train=True)
            mod.update_metric(metric, batch.label)
            mod.backward()
            mod.update()
            steps += 1
    mx.nd.waitall()
    train_s = time.perf_counter() - t0

    args, _aux = mod.get_params()
    w = args["weight"].tostype("default").asnumpy().ravel()
    b = args["bias"].asnumpy()
    score = _data.csr_predict(data, indices, indptr, w, b)
    name, loss = _data.final_loss(task, score, y)
    return {"epoch_seconds": train_s / epochs, "train_seconds": train_s, "epochs": epochs,
            "steps": steps, "data_seconds": prep_s, "rows": int(n), "final_loss": loss,
            "loss_name": name, "iterator": iterator, "version": mx.__version__}


class _Batches:
    """A list of DataBatch with the iterator attributes Module.bind needs."""

    def __init__(self, batches, d, batch_size, mx):
        self.batches = batches
        self.provide_data = [mx.io.DataDesc("data", (batch_size, d))]
        self.provide_label = [mx.io.DataDesc("softmax_label", (batch_size,))]

    def __iter__(self):
        return iter(self.batches)

    def reset(self):
        pass


def _main(argv) -> int:
    func = argv[0]
    kwargs = json.loads(argv[1]) if len(argv) > 1 else {}
    try:
        result = globals()[func](**kwargs)
        result.setdefault("status", "ok")
    except ImportError as e:
        result = {"status": "not available", "reason": f"{type(e).__name__}: {e}"}
    except Exception as e:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        result = {"status": "error", "reason": f"{type(e).__name__}: {e}"}
    try:
        with open("/proc/self/status") as f:
            hwm = [x for x in f if x.startswith("VmHWM:")]
        result.setdefault("peak_rss_mb", int(hwm[0].split()[1]) / 1024.0)
    except (OSError, IndexError):
        pass
    sys.stdout.write("\nBENCH_JSON " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
