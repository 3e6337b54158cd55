"""Gradient-boosted regression trees: scikit-learn's histogram GBM, fitted, applied and stored by the libraries.

:class:`BoostedTrees` holds a fitted :class:`sklearn.ensemble.HistGradientBoostingRegressor`
(squared loss) and predicts with it. In a calibration file it is the estimator serialised
by skops (``skops.io.dumps``, deflated, base64 in the JSON): a zip of a JSON schema and
``.npy`` arrays from which skops rebuilds only the types it trusts, so loading runs no code
from the file (no pickle). Trusted beyond skops' defaults: :data:`TRUSTED_TYPES`, the
trees' ``TreePredictor``, whose node arrays scikit-learn indexes without bounds checks;
so before anything is built, :func:`check_payload` reads the arrays from the zip and
refuses a file whose nodes point outside their tree or the feature matrix, or that has
categorical splits or a feature preprocessor (never fitted here).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Mapping

import numpy as np

from glacierbed.core.errors import CorruptFileError

#: what a stored ensemble says it is
TREES_FORMAT = "skops-hist-gradient-boosting"
#: types outside skops' defaults that a stored ensemble may contain (checked by :func:`check_payload`)
TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)
_ESTIMATOR = ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting", "HistGradientBoostingRegressor")
_NODE_FIELDS = ("feature_idx", "left", "right", "is_leaf", "is_categorical")


@lru_cache(maxsize=1)
def _threads() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@dataclass
class BoostedTrees:
    """A fitted ``HistGradientBoostingRegressor`` (``model``) on ``n_features`` columns."""

    model: Any

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
        return cls(est)

    @property
    def n_features(self) -> int:
        return int(self.model.n_features_in_)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's prediction for ``x`` (n, n_features); NaN goes the way learnt for missing values."""
        x = np.asarray(x, np.float64)
        if x.shape[0] == 0:
            return np.zeros(0)
        with _threads().limit(limits=1):
            return np.asarray(self.model.predict(x), np.float64)

    def to_dict(self) -> dict[str, Any]:
        import sklearn
        import skops
        import skops.io

        data = skops.io.dumps(self.model, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
        return {"format": TREES_FORMAT, "n_features": self.n_features, "scikit_learn": sklearn.__version__,
                "skops": skops.__version__, "n_iter": int(self.model.n_iter_),
                "data": base64.b64encode(data).decode("ascii")}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], n_features: int) -> "BoostedTrees":
        """The stored ensemble; :class:`CorruptFileError` (one line) for anything but a checked
        ``HistGradientBoostingRegressor`` on ``n_features`` columns."""
        import skops.io
        from sklearn.ensemble import HistGradientBoostingRegressor

        if not isinstance(d, Mapping) or d.get("format") != TREES_FORMAT:
            raise CorruptFileError(f"trees are not {TREES_FORMAT} (refit the calibration)")
        try:
            data = base64.b64decode(str(d["data"]), validate=True)
        except KeyError:
            raise CorruptFileError("trees: no data") from None
        except (binascii.Error, ValueError):
            raise CorruptFileError("trees: data is not base64") from None
        check_payload(data, n_features)
        try:
            model = skops.io.loads(data, trusted=list(TRUSTED_TYPES))
        except Exception as exc:  # skops/numpy/zip errors on a crafted or damaged payload
            raise CorruptFileError(f"trees: skops refused the payload ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
        if type(model) is not HistGradientBoostingRegressor or getattr(model, "n_features_in_", None) != n_features:
            raise CorruptFileError(f"trees: not a HistGradientBoostingRegressor on {n_features} features")
        return cls(model)


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


def check_payload(data: bytes, n_features: int) -> None:
    """Refuse (``CorruptFileError``) a skops payload that is not a numeric-split
    ``HistGradientBoostingRegressor`` on ``n_features`` features with well-formed trees,
    or that holds types outside skops' defaults and :data:`TRUSTED_TYPES`. Builds nothing."""
    import skops.io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            schema = json.loads(z.read("schema.json"))
            if (schema.get("__module__"), schema.get("__class__")) != _ESTIMATOR:
                raise CorruptFileError(f"trees: a {schema.get('__class__')!r}, not a HistGradientBoostingRegressor")
            untrusted = sorted(set(skops.io.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
            if untrusted:
                raise CorruptFileError(f"trees: untrusted types {', '.join(untrusted)}")
            n_trees = 0
            for key, node in _walk(schema):
                if node.get("__class__") == "TreePredictor":
                    _check_nodes(_array(z, node["content"]["content"]["nodes"]), n_features)
                    n_trees += 1
                elif key == "_preprocessor" and node.get("content") != "null":
                    raise CorruptFileError("trees: a feature preprocessor is not supported")
                elif key in ("is_categorical_", "is_categorical") and node.get("content") != "null":
                    if np.any(_array(z, node)):
                        raise CorruptFileError("trees: categorical features are not supported")
    except CorruptFileError:
        raise
    except Exception as exc:  # not a zip, no schema, unexpected layout
        raise CorruptFileError(f"trees: not a readable skops payload ({type(exc).__name__})") from None
    if n_trees == 0:
        raise CorruptFileError("trees: no tree in the payload")


def _walk(node: Any, key: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(key, node) of every schema node below ``node`` (dict keys carried down)."""
    if isinstance(node, dict):
        if "__class__" in node:
            yield key, node
        for k, v in node.items():
            yield from _walk(v, k if isinstance(v, dict) and "__class__" in v else key)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)


def _array(z: zipfile.ZipFile, node: Mapping[str, Any]) -> np.ndarray:
    if node.get("__loader__") != "NdArrayNode" or node.get("type") != "numpy":
        raise CorruptFileError(f"trees: expected a numpy array, found a {node.get('__class__')!r}")
    return np.load(io.BytesIO(z.read(str(node["file"]))), allow_pickle=False)


def _check_nodes(nodes: np.ndarray, n_features: int) -> None:
    """A tree's nodes: children after their parent and inside the tree, split features in
    range, no categorical split (what scikit-learn's predictor assumes without checking)."""
    if nodes.ndim != 1 or nodes.size == 0 or nodes.dtype.names is None \
            or not set(_NODE_FIELDS) <= set(nodes.dtype.names):
        raise CorruptFileError("trees: a tree's nodes are not a node record array")
    split = ~nodes["is_leaf"].astype(bool)
    idx = np.arange(nodes.size)[split]
    left, right = nodes["left"][split].astype(np.int64), nodes["right"][split].astype(np.int64)
    feature = nodes["feature_idx"][split].astype(np.int64)
    if np.any(nodes["is_categorical"]) or np.any((left <= idx) | (left >= nodes.size) | (right <= idx)
                                                  | (right >= nodes.size) | (feature < 0) | (feature >= n_features)):
        raise CorruptFileError("trees: a tree's nodes point outside the tree or the features")
