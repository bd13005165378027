"""The broad suite: scikit-learn models tuned by cross-validation on its bundled datasets.

Families and spaces are those a practitioner writes, not chosen for any optimizer: decision trees
and forests with ``min_samples_split`` / ``min_samples_leaf`` as fractions and integer depths,
histogram gradient boosting, kNN, SVMs, elastic net / lasso, logistic regression and MLPs (sgd and
adam), with log learning rates and categoricals. Metrics of both kinds: accuracy-like (1 - accuracy,
1 - ROC AUC) and loss-like (log loss, RMSE). Every evaluation is cheap (3-fold CV, digits
subsampled, few trees or epochs, one thread) and deterministic (fixed folds and model seeds), so
regret is taken against the best value any method found (``Task.reference`` is ``None``).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from benchmarks.tasks.base import Evaluation, Objective, Task, register
from lightning_hpo.space import Categorical, Domain, Float, Int

__all__ = ["BROAD_TASKS", "WIDE_TASKS"]

#: Rows of digits kept (fixed random subset): the whole set makes MLPs and forests the suite's cost.
DIGITS_ROWS = 400
#: Folds of every task's cross-validation.
FOLDS = 3

# scoring -> (sklearn scorer, value to minimize from the mean score)
_SCORINGS: dict[str, tuple[str, Callable[[float], float]]] = {
    "error": ("accuracy", lambda s: 1.0 - s),
    "1-auc": ("roc_auc", lambda s: 1.0 - s),
    "log_loss": ("neg_log_loss", lambda s: -s),
    "rmse": ("neg_root_mean_squared_error", lambda s: -s),
}


@functools.cache
def load(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of a bundled dataset; digits as a fixed subset of ``DIGITS_ROWS`` rows."""
    from sklearn import datasets

    x, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    if dataset == "digits":
        keep = np.random.default_rng(0).permutation(len(y))[:DIGITS_ROWS]
        x, y = x[keep], y[keep]
    return x, y


def _scaled(model: Any) -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), model)


def _scaled_target(model: Any) -> Any:
    """Standardized inputs and target: what a practitioner does for SVR and MLP regressors."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    return TransformedTargetRegressor(_scaled(model), transformer=StandardScaler())


def _cv_task(
    name: str,
    summary: str,
    dataset: str,
    scoring: str,
    space: Mapping[str, Domain],
    build: Callable[[dict[str, Any]], Any],
    worst: float,
) -> Task:
    """A task whose value is the ``scoring`` of ``build(params)`` over ``FOLDS``-fold CV on
    ``dataset``; a failed or non-finite fit counts as ``worst`` (every method is told the same)."""
    scorer, to_loss = _SCORINGS[scoring]
    regression = dataset == "diabetes"

    def make_objective(seed: int) -> Objective:
        from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

        x, y = load(dataset)
        folds = (KFold if regression else StratifiedKFold)(FOLDS, shuffle=True, random_state=0)

        def objective(params: Mapping[str, Any]) -> Evaluation:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                try:
                    scores = cross_val_score(build(dict(params)), x, y, cv=folds, scoring=scorer, error_score=np.nan)
                except ValueError:  # every fold failed (scikit-learn raises then, even with error_score)
                    scores = [math.nan]
            value = to_loss(float(np.mean(scores)))
            value = min(value, worst) if math.isfinite(value) else worst
            return Evaluation(value, value)

        return objective

    return Task(
        name=name,
        summary=f"{summary} on {dataset}, {FOLDS}-fold CV {scoring}",
        space=space,
        make_objective=make_objective,
    )


# -- the families: (space, builder) per kind of problem --------------------------------------------


def _tree(params: dict[str, Any], regression: bool) -> Any:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    cls = DecisionTreeRegressor if regression else DecisionTreeClassifier
    return cls(**params, random_state=0)


def _tree_space(regression: bool) -> dict[str, Domain]:
    return {
        "max_depth": Int(1, 30),
        "min_samples_split": Float(0.001, 0.5),
        "min_samples_leaf": Float(0.001, 0.25),
        "max_features": Float(0.1, 1.0),
        "criterion": Categorical(
            ["squared_error", "absolute_error", "friedman_mse"] if regression else ["gini", "entropy", "log_loss"]
        ),
    }


def _forest(params: dict[str, Any], regression: bool) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if regression else RandomForestClassifier
    return cls(**params, random_state=0, n_jobs=1)


_FOREST_SPACE: dict[str, Domain] = {
    "n_estimators": Int(5, 30, log=True),
    "max_depth": Int(1, 20),
    "min_samples_split": Float(0.001, 0.5),
    "min_samples_leaf": Float(0.001, 0.25),
    "max_features": Float(0.05, 1.0),
    "bootstrap": Categorical([True, False]),
}


def _boosting(params: dict[str, Any], regression: bool) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    return cls(**params, early_stopping=False, random_state=0)


_BOOSTING_SPACE: dict[str, Domain] = {
    "learning_rate": Float(1e-3, 1.0, log=True),
    "max_iter": Int(5, 50, log=True),
    "max_leaf_nodes": Int(2, 64, log=True),
    "min_samples_leaf": Int(1, 100, log=True),
    "l2_regularization": Float(1e-6, 10.0, log=True),
    "max_features": Float(0.1, 1.0),
}


def _knn(params: dict[str, Any], regression: bool) -> Any:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    return _scaled((KNeighborsRegressor if regression else KNeighborsClassifier)(**params))


_KNN_SPACE: dict[str, Domain] = {
    "n_neighbors": Int(1, 50, log=True),
    "weights": Categorical(["uniform", "distance"]),
    "metric": Categorical(["euclidean", "manhattan", "chebyshev", "cosine"]),
}


def _svc(params: dict[str, Any], regression: bool) -> Any:
    from sklearn.svm import SVC, SVR

    return _scaled_target(SVR(**params)) if regression else _scaled(SVC(**params))


_SVC_SPACE: dict[str, Domain] = {
    "C": Float(1e-3, 1e3, log=True),
    "gamma": Float(1e-5, 10.0, log=True),
    "kernel": Categorical(["rbf", "sigmoid"]),
}
_SVR_SPACE: dict[str, Domain] = {
    "C": Float(1e-3, 1e3, log=True),
    "gamma": Float(1e-5, 10.0, log=True),
    "epsilon": Float(1e-3, 1.0, log=True),
}


def _logistic(params: dict[str, Any], regression: bool) -> Any:
    from sklearn.linear_model import LogisticRegression

    return _scaled(LogisticRegression(**params, max_iter=100))


_LOGISTIC_SPACE: dict[str, Domain] = {
    "C": Float(1e-4, 1e4, log=True),
    "fit_intercept": Categorical([True, False]),
    "class_weight": Categorical([None, "balanced"]),
}


def _elastic_net(params: dict[str, Any], regression: bool) -> Any:
    from sklearn.linear_model import ElasticNet
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    degree = params.pop("degree", 1)
    params.setdefault("l1_ratio", 1.0)  # no l1_ratio in the space: the lasso
    return make_pipeline(
        PolynomialFeatures(degree, include_bias=False), StandardScaler(), ElasticNet(**params, max_iter=2000)
    )


_ELASTIC_NET_SPACE: dict[str, Domain] = {"alpha": Float(1e-5, 10.0, log=True), "l1_ratio": Float(0.0, 1.0)}
_LASSO_POLY_SPACE: dict[str, Domain] = {
    "alpha": Float(1e-5, 10.0, log=True),
    "degree": Int(1, 3),
}


def _mlp(solver: str) -> Callable[[dict[str, Any], bool], Any]:
    def build(params: dict[str, Any], regression: bool) -> Any:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        width, layers = params.pop("width"), params.pop("layers")
        cls = MLPRegressor if regression else MLPClassifier
        model = cls(hidden_layer_sizes=(width,) * layers, solver=solver, max_iter=20, random_state=0, **params)
        return _scaled_target(model) if regression else _scaled(model)

    return build


_MLP_COMMON: dict[str, Domain] = {
    "width": Int(8, 128, log=True),
    "layers": Int(1, 3),
    "alpha": Float(1e-6, 1e-1, log=True),
    "batch_size": Int(16, 256, log=True),
}
_MLP_SGD_SPACE: dict[str, Domain] = {
    **_MLP_COMMON,
    "learning_rate_init": Float(1e-4, 1.0, log=True),
    "momentum": Float(0.0, 0.99),
    "nesterovs_momentum": Categorical([True, False]),
}
_MLP_ADAM_SPACE: dict[str, Domain] = {
    **_MLP_COMMON,
    "learning_rate_init": Float(1e-5, 1e-1, log=True),
    "beta_1": Float(0.5, 0.999),
    "activation": Categorical(["relu", "tanh", "logistic"]),
}

# Wide spaces: every knob of a family a practitioner might open, 9-11 columns (the suite's are 2-7).
_FOREST_WIDE_SPACE: dict[str, Domain] = {
    **_FOREST_SPACE,
    "max_leaf_nodes": Int(2, 256, log=True),
    "min_impurity_decrease": Float(0.0, 0.05),
    "min_weight_fraction_leaf": Float(0.0, 0.3),
    "ccp_alpha": Float(0.0, 0.05),
}
_BOOSTING_WIDE_SPACE: dict[str, Domain] = {
    **_BOOSTING_SPACE,
    "max_depth": Int(2, 16),
    "max_bins": Int(16, 255, log=True),
    "interaction_cst": Categorical([None, "pairwise", "no_interactions"]),
}
_MLP_ADAM_WIDE_SPACE: dict[str, Domain] = {
    **_MLP_ADAM_SPACE,
    "beta_2": Float(0.9, 0.9999),
    "epsilon": Float(1e-9, 1e-6, log=True),
    "validation_fraction": Float(0.05, 0.3),
    "early_stopping": Categorical([True, False]),
}

# family -> (summary, space for regression or not, builder(params, regression))
_FAMILY = {
    "dt": ("decision tree", lambda r: _tree_space(r), _tree),
    "rf": ("random forest", lambda r: _FOREST_SPACE, _forest),
    "hgb": ("histogram gradient boosting", lambda r: _BOOSTING_SPACE, _boosting),
    "knn": ("kNN (standardized)", lambda r: _KNN_SPACE, _knn),
    "svm": ("SVM (standardized)", lambda r: _SVR_SPACE if r else _SVC_SPACE, _svc),
    "logreg": ("logistic regression (lbfgs)", lambda r: _LOGISTIC_SPACE, _logistic),
    "enet": ("elastic net", lambda r: _ELASTIC_NET_SPACE, _elastic_net),
    "lassopoly": ("lasso on polynomial features", lambda r: _LASSO_POLY_SPACE, _elastic_net),
    "mlpsgd": ("MLP, sgd", lambda r: _MLP_SGD_SPACE, _mlp("sgd")),
    "mlpadam": ("MLP, adam", lambda r: _MLP_ADAM_SPACE, _mlp("adam")),
    "rfwide": ("random forest, 10 hyperparameters", lambda r: _FOREST_WIDE_SPACE, _forest),
    "hgbwide": ("histogram gradient boosting, 9 hyperparameters", lambda r: _BOOSTING_WIDE_SPACE, _boosting),
    "mlpadamwide": ("MLP, adam, 11 hyperparameters", lambda r: _MLP_ADAM_WIDE_SPACE, _mlp("adam")),
}

#: (family, dataset, scoring) of every task; its name is ``sk_<family>_<dataset>``.
_TASKS = (
    ("dt", "digits", "error"),
    ("dt", "wine", "error"),
    ("dt", "breast_cancer", "log_loss"),
    ("dt", "diabetes", "rmse"),
    ("rf", "digits", "error"),
    ("rf", "wine", "log_loss"),
    ("rf", "breast_cancer", "1-auc"),
    ("rf", "diabetes", "rmse"),
    ("hgb", "wine", "log_loss"),
    ("hgb", "breast_cancer", "1-auc"),
    ("hgb", "diabetes", "rmse"),
    ("knn", "digits", "error"),
    ("knn", "iris", "log_loss"),
    ("knn", "breast_cancer", "1-auc"),
    ("knn", "diabetes", "rmse"),
    ("svm", "digits", "error"),
    ("svm", "wine", "error"),
    ("svm", "iris", "error"),
    ("svm", "diabetes", "rmse"),
    ("enet", "diabetes", "rmse"),
    ("lassopoly", "diabetes", "rmse"),
    ("logreg", "breast_cancer", "log_loss"),
    ("logreg", "digits", "log_loss"),
    ("logreg", "wine", "error"),
    ("mlpsgd", "digits", "log_loss"),
    ("mlpsgd", "breast_cancer", "1-auc"),
    ("mlpadam", "digits", "error"),
    ("mlpadam", "wine", "log_loss"),
    ("mlpadam", "diabetes", "rmse"),
)
#: What a failed fit counts as: worse than any sensible model (chance for error and AUC, a large
#: log loss, an RMSE above the standard deviation of diabetes' target, 77).
_WORST = {"error": 1.0, "1-auc": 1.0, "log_loss": 10.0, "rmse": 200.0}


def _register(family: str, dataset: str, scoring: str) -> str:
    name = f"sk_{family}_{dataset}"
    summary, space_of, builder = _FAMILY[family]
    regression = dataset == "diabetes"

    def build_task() -> Task:
        return _cv_task(
            name, summary, dataset, scoring, space_of(regression), lambda p: builder(p, regression), _WORST[scoring]
        )

    register(name)(build_task)
    return name


#: The broad suite's task names, in order.
BROAD_TASKS = tuple(_register(*spec) for spec in _TASKS)
#: Wide-space tasks, in no suite: hold-outs for settings that depend on the number of columns.
WIDE_TASKS = tuple(
    _register(*spec)
    for spec in (
        ("rfwide", "wine", "log_loss"),
        ("rfwide", "diabetes", "rmse"),
        ("hgbwide", "breast_cancer", "1-auc"),
        ("mlpadamwide", "digits", "error"),
    )  # fmt: skip
)
