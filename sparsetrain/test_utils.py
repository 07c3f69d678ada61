"""Helpers for tests and tutorials, as ``mxnet.test_utils``."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import check_stype
from .ndarray import NDArray, cast_storage
from .ndarray.sparse import csr_matrix
from .random import generator


def rand_ndarray(shape, stype="default", density=None, dtype=None, distribution=None,
                 modifier_func=None, shuffle_csr_indices=False, ctx=None):
    """A random array of ``stype``; sparse ones have about ``density`` non-zeros (uniform [0, 1)).

    ``modifier_func`` maps the stored values (as MXNet's); ``shuffle_csr_indices`` is accepted
    for compatibility (csr indices are always kept sorted here)."""
    if modifier_func is not None:
        out = rand_ndarray(shape, stype, density, dtype, distribution)
        out._data = np.asarray(modifier_func(out._data), dtype=out.dtype)
        return out
    check_stype(stype)
    rng = generator()
    dtype = np.dtype(dtype or np.float32)
    density = rng.random() if density is None else float(density)
    shape = tuple(shape)
    if stype == "default":
        return NDArray(rng.uniform(-1.0, 1.0, size=shape).astype(dtype))
    if stype == "csr":
        if len(shape) != 2:
            raise ValueError(f"csr needs a 2-D shape, got {shape}")
        if distribution == "powerlaw":
            return _powerlaw_csr(shape, density, dtype, rng)
        # random_state= (scipy 1.10+); its rng= alias only exists from scipy 1.15 on
        m = sp.random(shape[0], shape[1], density=density, format="csr", dtype=np.float64, random_state=rng)
        m.data = rng.uniform(0.0, 1.0, size=m.nnz)
        m.sort_indices()
        return csr_matrix(m, dtype=dtype)
    rows = rng.random(shape[0]) < density
    data = np.zeros(shape, dtype=dtype)
    data[rows] = rng.uniform(0.0, 1.0, size=(int(rows.sum()),) + shape[1:]).astype(dtype)
    return cast_storage(NDArray(data), "row_sparse")


def _powerlaw_csr(shape, density, dtype, rng):
    """MXNet's power-law rows: every row starts with column 0, then row ``i`` fills its first
    ``2**(i+1)`` columns (a whole row once that reaches the width), in row order, until
    ``int(rows * cols * density)`` values are placed; values are in (1.001, 3.001)."""
    n, m = shape
    budget = int(n * m * density)
    counts = np.zeros(n, dtype=np.int64)
    first = min(n, budget)
    counts[:first] = 1
    budget -= first
    col_max = 2
    for i in range(n):
        if budget <= 0:
            break
        limit = min(m, col_max)
        if limit == m and budget > limit:
            budget -= limit - counts[i]
            counts[i] = limit
            continue
        extra = min(limit - counts[i], budget)
        counts[i] += extra
        budget -= extra
        col_max *= 2
    if budget > 0:
        raise ValueError(f"a power-law csr cannot hold density {density} in shape {shape}")
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.concatenate([np.arange(c) for c in counts]) if n else np.zeros(0)
    data = 1 + rng.uniform(0.001, 2, size=int(indptr[-1]))
    return csr_matrix((data.astype(dtype), indices.astype(np.int64), indptr), shape=shape)


def assert_almost_equal(a, b, rtol=1e-5, atol=1e-7):
    a = a.asnumpy() if hasattr(a, "asnumpy") else np.asarray(a)
    b = b.asnumpy() if hasattr(b, "asnumpy") else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def default_context():
    """The context MXNet's tests run in (always the CPU here)."""
    from .base import cpu

    return cpu()


def rand_shape_2d(dim0=10, dim1=10):
    """A random 2-D shape with each dimension in ``[1, dim]``, as ``mxnet.test_utils``."""
    rng = generator()
    return int(rng.integers(1, dim0 + 1)), int(rng.integers(1, dim1 + 1))


def rand_shape_3d(dim0=10, dim1=10, dim2=10):
    rng = generator()
    return tuple(int(rng.integers(1, d + 1)) for d in (dim0, dim1, dim2))


def rand_shape_nd(num_dim, dim=10):
    rng = generator()
    return tuple(int(x) for x in rng.integers(1, dim + 1, size=num_dim))


def same(a, b) -> bool:
    """Exact equality of two arrays (any storage type, numpy or sparsetrain)."""
    a = a.asnumpy() if hasattr(a, "asnumpy") else np.asarray(a)
    b = b.asnumpy() if hasattr(b, "asnumpy") else np.asarray(b)
    return bool(np.array_equal(a, b))


def almost_equal(a, b, rtol=1e-5, atol=1e-7) -> bool:
    a = a.asnumpy() if hasattr(a, "asnumpy") else np.asarray(a)
    b = b.asnumpy() if hasattr(b, "asnumpy") else np.asarray(b)
    return bool(np.allclose(a, b, rtol=rtol, atol=atol))


def rand_sparse_ndarray(shape, stype, density=None, dtype=None, distribution=None, **kwargs):
    """``(array, parts)`` as MXNet's: parts are ``(indptr, indices, data)`` for csr and
    ``(data, indices)`` for row_sparse, as numpy arrays."""
    arr = rand_ndarray(shape, stype, density, dtype, distribution, **kwargs)
    if stype == "csr":
        return arr, (arr._indptr.copy(), arr._indices.copy(), arr._data.copy())
    if stype == "row_sparse":
        return arr, (arr._data.copy(), arr._indices.copy())
    raise ValueError(f"rand_sparse_ndarray needs stype 'csr' or 'row_sparse', got {stype!r}")


def random_arrays(*shapes):
    """Standard-normal float32 numpy arrays (a single array for a single shape)."""
    rng = generator()
    arrays = [np.asarray(rng.standard_normal(size=s), dtype=np.float32) for s in shapes]
    return arrays[0] if len(arrays) == 1 else arrays


def random_sample(population, k):
    """``k`` distinct items of ``population``, in random order."""
    return [population[i] for i in generator().permutation(len(population))[:k]]


# -- checks of symbols against expected values and finite differences (as mxnet.test_utils) -----

def _as_dict(sym, values, what):
    if values is None:
        return {}
    if isinstance(values, dict):
        return dict(values)
    names = sym.list_arguments() if what == "location" else sym.list_outputs()
    return dict(zip(names, values))


def _array_of(x, dtype=None):
    from .ndarray import array

    return x if hasattr(x, "stype") else array(np.asarray(x), dtype=dtype or np.asarray(x).dtype)


def _bind(sym, location, grad_req="write", grad_stypes=None, dtype=None):
    from .ndarray import zeros

    args = {n: _array_of(v) for n, v in _as_dict(sym, location, "location").items()}
    if dtype is not None:
        args = {n: a.astype(dtype) for n, a in args.items()}
    reqs = grad_req if isinstance(grad_req, dict) else {n: grad_req for n in args}
    grads = {n: zeros(a.shape, dtype=a.dtype, stype=(grad_stypes or {}).get(n, "default"))
             for n, a in args.items() if reqs.get(n, "null") != "null"}
    return sym.bind(args=args, args_grad=grads or None, grad_req=reqs)


def check_symbolic_forward(sym, location, expected, rtol=1e-4, atol=None, aux_states=None, ctx=None,
                           equal_nan=False, dtype=np.float32):
    """Bind ``sym`` to ``location`` (dict or list of arrays), run forward and compare every
    output with ``expected`` (list, or dict by output name). Returns the outputs."""
    ex = _bind(sym, location, grad_req="null")
    outputs = ex.forward(is_train=False)
    want = _as_dict(sym, expected, "expected")
    for name, out in zip(sym.list_outputs(), outputs):
        np.testing.assert_allclose(out.asnumpy(), np.asarray(_array_of(want[name]).asnumpy()), rtol=rtol,
                                   atol=1e-20 if atol is None else atol, equal_nan=equal_nan,
                                   err_msg=f"output {name!r}")
    return outputs


def check_symbolic_backward(sym, location, out_grads, expected, rtol=1e-5, atol=None, aux_states=None,
                            grad_req="write", ctx=None, grad_stypes=None, equal_nan=False, dtype=np.float32):
    """Run forward (training) and backward with ``out_grads``; compare the argument gradients
    with ``expected`` (dict by name, or list in argument order); ``grad_stypes`` gives the
    storage type of chosen gradient arrays. Returns the gradient arrays."""
    ex = _bind(sym, location, grad_req, grad_stypes)
    ex.forward(is_train=True)
    heads = None if out_grads is None else [_array_of(g) for g in
                                            (out_grads.values() if isinstance(out_grads, dict) else out_grads)]
    ex.backward(heads)
    want = _as_dict(sym, expected, "location")
    for name, value in want.items():
        got = ex.grad_dict[name]
        if grad_stypes and name in grad_stypes:
            assert got.stype == grad_stypes[name], f"gradient of {name!r} is {got.stype}, expected {grad_stypes[name]}"
        np.testing.assert_allclose(got.asnumpy(), np.asarray(_array_of(value).asnumpy()), rtol=rtol,
                                   atol=1e-20 if atol is None else atol, equal_nan=equal_nan,
                                   err_msg=f"gradient of {name!r}")
    return ex.grad_dict


def check_numeric_gradient(sym, location, aux_states=None, numeric_eps=1e-3, rtol=1e-2, atol=None,
                           grad_nodes=None, use_forward_train=True, ctx=None, grad_stype_dict=None,
                           dtype=np.float64):
    """Compare the backward gradients of ``sym`` with central finite differences of
    ``sum(output * random head)``, in float64, for ``grad_nodes`` (default: every argument).
    Sparse arguments are perturbed through their dense values and keep their stype."""
    location = {n: _array_of(v) for n, v in _as_dict(sym, location, "location").items()}
    nodes = list(grad_nodes or location)
    stypes = {n: a.stype for n, a in location.items()}
    values = {n: a.asnumpy().astype(np.float64) for n, a in location.items()}

    def arrays(vals):
        from .ndarray import array

        return {n: array(v, dtype=np.float64).tostype(stypes[n]) for n, v in vals.items()}

    grad_stypes = {n: (grad_stype_dict or {}).get(n, "row_sparse" if stypes[n] == "row_sparse" else "default")
                   for n in nodes}
    ex = _bind(sym, arrays(values), {n: ("write" if n in nodes else "null") for n in location}, grad_stypes)
    out = ex.forward(is_train=use_forward_train)[0]
    head = generator().normal(size=out.shape)
    from .ndarray import array

    ex.backward([array(head, dtype=np.float64)])
    for name in nodes:
        analytic = ex.grad_dict[name].asnumpy()
        numeric = np.zeros(values[name].shape)
        for idx in np.ndindex(*values[name].shape):
            total = []
            for delta in (numeric_eps / 2, -numeric_eps / 2):
                trial = {n: v.copy() for n, v in values.items()}
                trial[name][idx] += delta
                for n, a in arrays(trial).items():
                    ex.arg_dict[n][:] = a
                total.append(float((ex.forward(is_train=use_forward_train)[0].asnumpy() * head).sum()))
            numeric[idx] = (total[0] - total[1]) / numeric_eps
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=1e-4 if atol is None else atol,
                                   err_msg=f"numeric gradient of {name!r}")
