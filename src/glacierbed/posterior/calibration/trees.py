"""Gradient-boosted regression trees: fitted by scikit-learn, stored and applied as ONNX.

:class:`BoostedTrees` is fitted as a :class:`sklearn.ensemble.HistGradientBoostingRegressor`
(squared loss) and, while in memory after the fit, predicts with it. In a calibration file
it is an ONNX ``TreeEnsembleRegressor`` graph (converted by skl2onnx, base64 in the JSON),
read back and applied by onnxruntime: a data format with no code in it (no pickle), and
about 0.1 s and 50 MiB to import where scikit-learn plus a safe pickle reader took 3.8 s and
380 MiB (``benchmarks/results/whole_process_speed.md``). ONNX trees work in float32:
a stored ensemble's predictions differ from the fitted estimator's by float32 rounding
(and, rarely, where a feature lies within float32 precision of a split), measured in
``tests/test_calibration.py`` and on the shipped calibration.
"""

from __future__ import annotations

import base64
import binascii
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

import numpy as np

from glacierbed.core.errors import CorruptFileError

#: what a stored ensemble says it is
TREES_FORMAT = "onnx-tree-ensemble"
#: the ONNX operator sets the ensemble is written for (ai.onnx.ml 3: TreeEnsembleRegressor)
ONNX_OPSETS = {"": 18, "ai.onnx.ml": 3}


@lru_cache(maxsize=1)
def _threads() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@dataclass
class BoostedTrees:
    """A boosted ensemble on ``n_features`` columns: ``model`` (the fitted scikit-learn
    estimator) after a fit, ``onnx`` (the serialised graph) once stored or loaded."""

    model: Any = None
    onnx: bytes | None = None
    n_columns: int = 0
    #: boosting iterations stored with a loaded graph (the fitted model knows its own)
    stored_n_iter: int | None = None
    _session: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, w: np.ndarray, *, max_iter: int, learning_rate: float,
            max_depth: int, max_leaf_nodes: int, min_samples_leaf: int, l2_regularization: float,
            seed: int) -> "BoostedTrees":
        """Squared loss, no early stopping, sample weights ``w`` (normalised to mean 1)."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        est = HistGradientBoostingRegressor(
            loss="squared_error", learning_rate=learning_rate, max_iter=max_iter, max_depth=max_depth,
            max_leaf_nodes=max_leaf_nodes, min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization,
            early_stopping=False, random_state=seed)
        with _threads().limit(limits=1):  # OpenMP threads spin badly on shared cores
            est.fit(x, y, sample_weight=w / w.mean())
        return cls(model=est, n_columns=int(est.n_features_in_))

    @property
    def n_features(self) -> int:
        return self.n_columns

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's prediction for ``x`` (n, n_features); NaN goes the way learnt for missing values."""
        x = np.asarray(x, np.float64)
        if x.shape[0] == 0:
            return np.zeros(0)
        if self.model is not None:
            with _threads().limit(limits=1):
                return np.asarray(self.model.predict(x), np.float64)
        session = self.session()
        out = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
        return np.asarray(out, np.float64).reshape(-1)

    def session(self) -> Any:
        """The onnxruntime session of the stored graph (one thread: cells come in small batches)."""
        if self._session is None:
            self._session = _session(self.onnx, self.n_columns)
        return self._session

    def to_onnx(self) -> bytes:
        """The ensemble as a serialised ONNX graph (float32 input ``x`` of shape (n, n_features))."""
        if self.onnx is None:
            from skl2onnx import to_onnx
            from skl2onnx.common.data_types import FloatTensorType

            with warnings.catch_warnings():  # skl2onnx's bools in integer attributes (see pyproject's protobuf pin)
                warnings.filterwarnings("ignore", message=".*Expected an int, got a boolean", category=DeprecationWarning)
                graph = to_onnx(self.model, initial_types=[("x", FloatTensorType([None, self.n_columns]))],
                                target_opset=ONNX_OPSETS)
            self.onnx = graph.SerializeToString()
        return self.onnx

    def to_dict(self) -> dict[str, Any]:
        return {"format": TREES_FORMAT, "n_features": self.n_features,
                "n_iter": int(self.model.n_iter_) if self.model is not None else self.stored_n_iter,
                "data": base64.b64encode(self.to_onnx()).decode("ascii")}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], n_features: int) -> "BoostedTrees":
        """The stored ensemble; :class:`CorruptFileError` (one line) for anything but an ONNX
        graph with one float input of ``n_features`` columns and one output."""
        if not isinstance(d, Mapping) or d.get("format") != TREES_FORMAT:
            raise CorruptFileError(f"trees are not {TREES_FORMAT} (refit the calibration)")
        try:
            data = base64.b64decode(str(d["data"]), validate=True)
        except KeyError:
            raise CorruptFileError("trees: no data") from None
        except (binascii.Error, ValueError):
            raise CorruptFileError("trees: data is not base64") from None
        n_iter = d.get("n_iter")
        trees = cls(onnx=data, n_columns=n_features, stored_n_iter=int(n_iter) if n_iter is not None else None)
        trees.session()  # parsed and checked now: a damaged file fails at load, not mid-run
        return trees


def _session(data: bytes | None, n_features: int) -> Any:
    """An onnxruntime session on ``data``, checked to map (n, n_features) floats to one output."""
    import onnxruntime as ort

    if not data:
        raise CorruptFileError("trees: no ONNX graph")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 4  # errors come back as exceptions, not console noise
    try:
        sess = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own error types for unreadable graphs
        raise CorruptFileError(f"trees: not a readable ONNX graph ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1 or inputs[0].type != "tensor(float)" \
            or len(inputs[0].shape) != 2 or inputs[0].shape[1] != n_features:
        shape = [tuple(i.shape) for i in inputs]
        raise CorruptFileError(f"trees: the ONNX graph takes {shape}, not (n, {n_features}) floats on {n_features} features")
    return sess


@dataclass
class BoostingSettings:
    """The boosting settings of a step with trees (a base of the step dataclasses; saved
    beside the trees as ``hyperparameters``)."""

    max_iter: int = 100
    learning_rate: float = 0.05
    max_depth: int = 3
    max_leaf_nodes: int = 8
    min_samples_leaf: int = 200
    l2_regularization: float = 1.0
    seed: int = 0

    def hyperparameters(self) -> dict[str, Any]:
        return {"max_iter": self.max_iter, "learning_rate": self.learning_rate, "max_depth": self.max_depth,
                "max_leaf_nodes": self.max_leaf_nodes, "min_samples_leaf": self.min_samples_leaf,
                "l2_regularization": self.l2_regularization, "seed": self.seed}

    def fit_trees(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> BoostedTrees:
        return BoostedTrees.fit(x, y, w, **self.hyperparameters())
