"""The seed tutorial's training loop on sparsetrain's Module (issue 4's benchmark).

Line for line the "Training with Module APIs" half of ``shared/seed/``, with
``import sparsetrain as mx`` in place of ``import mxnet as mx``: 1000x100 CSR at density 0.01,
batch 1, 10 epochs of ``forward / update_metric / backward / update`` (10,000 steps).
Only the 10-epoch loop is timed. ``run()`` returns seconds, µs per step and the final MSE;
``python -m benchmarks.seed_loop`` prints them as JSON. The MXNet 1.9.1 twin of this loop is
``benchmarks/peers/mxnet_peer.py:seed``; ``python -m benchmarks.run --only seed`` runs both.
"""
from __future__ import annotations

import json
import time


def run(epochs: int = 10, seed: int = 0) -> dict:
    import numpy as np

    import sparsetrain as mx

    if hasattr(mx, "random") and hasattr(mx.random, "seed"):
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
        history.append(float(metric.get()[1]))
    sec = time.perf_counter() - t0
    # ------------------------------------------------------------------------------------------
    return {"train_seconds": sec, "epoch_seconds": sec / epochs, "steps": steps,
            "us_per_step": sec / max(steps, 1) * 1e6, "final_loss": history[-1],
            "loss_name": "mse", "history": history}


if __name__ == "__main__":
    print(json.dumps(run()))
