"""A search space over the keys of a LightningCLI config, on plain dicts: no Lightning, no parser.

The ``tune`` subcommand (:mod:`lightning_hpo.cli`) names what it tunes by config keys, as
``--print_config`` shows them (``model.lr``, ``data.batch_size``, ``trainer.callbacks.0.patience``).
This module turns the ``tune.search_space`` mapping into a :class:`~lightning_hpo.SearchSpace`, puts a
trial's values into a config dict, and names the sampler and pruner classes that ``--tune.sampler``
and ``--tune.pruner`` accept by name. Parsing a config is the caller's: :func:`check_space_fits`
takes the parse as a function.
"""

from __future__ import annotations

import copy
import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lightning_hpo.exceptions import InvalidArgumentError, LightningHPOError
from lightning_hpo.space import Categorical, Domain, Float, Int, SearchSpace

__all__ = [
    "PRUNER_NAMES",
    "SAMPLER_NAMES",
    "by_name",
    "check_space_fits",
    "locate",
    "search_space_from_config",
    "take_search_space_flags",
    "with_params",
]

#: Names accepted by ``--tune.sampler`` -> lightning_hpo class; a name works once its class exists.
SAMPLER_NAMES = {"sobol": "SobolSampler", "random": "RandomSampler", "gp": "GPSampler", "grid": "GridSampler"}
#: Names accepted by ``--tune.pruner`` -> lightning_hpo class (built with its defaults).
PRUNER_NAMES = {
    "median": "MedianPruner",
    "nop": "NopPruner",
    "asha": "ASHAPruner",
    "hyperband": "HyperbandPruner",
    "curve": "CurvePruner",
}

_DOMAIN_TYPES: dict[str, type] = {"float": Float, "int": Int, "categorical": Categorical}
# A flag of one search-space key: --tune.search_space.model.hidden '[16, 32]'.
_SPACE_FLAG = "--tune.search_space."
# Keys of a class_path/init_args block that are the block's own, not arguments of the class.
_CLASS_KEYS = ("class_path", "init_args", "dict_kwargs")


def search_space_from_config(spec: Mapping[str, Any] | None, decorated: SearchSpace | None = None) -> SearchSpace:
    """The study's space: the ``@tunable`` space of the model (as ``model.<name>``) updated by ``spec``.

    ``spec`` maps config keys to domains: a mapping with ``type`` (float, int, categorical) and the
    domain's arguments, or a list of choices (a categorical). A conditional domain names its parents
    by config key: ``{type: float, low: 0.0, high: 0.99, when: {model.optimizer: sgd}}``; the
    ``when`` of a ``@tunable`` space gets the ``model.`` prefix with its names. ``init_args`` in a key is dropped
    (``model.init_args.lr`` is ``model.lr``); a ``None`` domain removes the key.

    Example:
        >>> search_space_from_config({"model.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}})
        SearchSpace({'model.lr': Float(0.0001, 0.1, log=True)})
        >>> search_space_from_config({"model.hidden": [16, 32, 128]})
        SearchSpace({'model.hidden': Categorical([16, 32, 128])})
    """
    domains: dict[str, Domain] = {
        f"model.{name}": domain.with_when({f"model.{p}": v for p, v in domain.when.items()} or None)
        for name, domain in (decorated or {}).items()
    }
    if spec is not None and not isinstance(spec, Mapping):
        raise InvalidArgumentError(f"tune.search_space must map config keys to domains, but got {spec!r}.")
    for key, domain_spec in (spec or {}).items():
        key = _config_key(key)
        if domain_spec is None:
            domains.pop(key, None)
        else:
            domains[key] = _domain(key, domain_spec)
    if not domains:
        raise InvalidArgumentError(
            "The search space is empty: give tune.search_space (e.g. {model.lr: {type: float, low: 1.0e-4, "
            "high: 0.1, log: true}}) or decorate the model class with @lightning_hpo.tunable(...)."
        )
    return SearchSpace(domains)


def _config_key(key: Any) -> str:
    """A search-space key without its ``init_args`` parts: ``model.init_args.lr`` is ``model.lr``."""
    return ".".join(part for part in str(key).split(".") if part != "init_args")


def _domain(key: str, spec: Any) -> Domain:
    if isinstance(spec, (list, tuple)):
        spec = {"type": "categorical", "choices": list(spec)}
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if not isinstance(kind, str) or kind not in _DOMAIN_TYPES:
        raise InvalidArgumentError(
            f"tune.search_space[{key!r}] must be a mapping with type float, int or categorical, or a list of "
            f"choices, but got {spec!r}."
        )
    domain_cls = _DOMAIN_TYPES[kind]
    arguments = {k: v for k, v in spec.items() if k != "type"}
    if isinstance(arguments.get("when"), Mapping):
        arguments["when"] = {_config_key(parent): values for parent, values in arguments["when"].items()}
    parameters = inspect.signature(domain_cls).parameters
    accepted = list(parameters)
    unknown = sorted(set(arguments) - set(accepted))
    missing = [n for n, p in parameters.items() if p.default is p.empty and n not in arguments]
    if unknown or missing:
        raise InvalidArgumentError(
            f"tune.search_space[{key!r}]: a {kind} domain takes {accepted}, but got {spec!r}"
            + (f" (unknown: {unknown})" if unknown else "")
            + (f" (missing: {missing})" if missing else "")
            + "."
        )
    try:
        return domain_cls(**arguments)
    except LightningHPOError as error:
        raise type(error)(f"tune.search_space[{key!r}]: {error}") from None


def take_search_space_flags(argv: Sequence[str], load: Callable[[str], Any]) -> tuple[list[str], dict[str, Any]]:
    """``argv`` without its ``--tune.search_space.<key> <domain>`` flags, and those flags as a spec.

    jsonargparse reads such flags into the ``search_space`` dict by the first part of the key, so a
    second flag under ``model.`` would replace the first; the CLI takes them out before parsing and adds
    them to the parsed space. ``load`` reads a value (the parser's YAML loader); ``--flag=value``
    and ``--flag value`` are both read, and a flag without a value is left for the parser to reject.

    Example:
        >>> import json
        >>> take_search_space_flags(["tune", "--tune.search_space.model.hidden", "[16, 32]"], json.loads)
        (['tune'], {'model.hidden': [16, 32]})
    """
    kept: list[str] = []
    flags: dict[str, Any] = {}
    arguments = iter(argv)
    for argument in arguments:
        key, has_value, value = argument.removeprefix(_SPACE_FLAG).partition("=")
        if not argument.startswith(_SPACE_FLAG) or not key:
            kept.append(argument)
        elif has_value:
            flags[key] = load(value)
        elif (following := next(arguments, None)) is not None:
            flags[key] = load(following)
        else:
            kept.append(argument)
    return kept, flags


def locate(config: dict[str, Any], key: str) -> tuple[Any, Any]:
    """The container in ``config`` and the index in it of the value that search-space ``key`` names.

    ``init_args`` is implied: ``model.lr`` is ``model.init_args.lr`` when the model is given by
    ``class_path``; list items are named by position (``trainer.callbacks.0.patience``).

    Example:
        >>> locate({"model": {"class_path": "m.Net", "init_args": {"lr": 0.1}}}, "model.lr")
        ({'lr': 0.1}, 'lr')
    """
    node: Any = config
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if isinstance(node, dict) and "class_path" in node and part not in _CLASS_KEYS:
            node = node.setdefault("init_args", {})
        if isinstance(node, dict) and part in node:
            index: Any = part
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            index = int(part)
        else:
            raise InvalidArgumentError(_names_nothing(key, parts, depth, node))
        if depth == len(parts) - 1:
            return node, index
        node = node[index]
    raise AssertionError("unreachable: a key has at least one part")


def _names_nothing(key: str, parts: list[str], depth: int, node: Any) -> str:
    """Why ``key`` names nothing: what the config holds where its ``depth``-th part was looked up."""
    where = ".".join(parts[:depth])
    part = parts[depth]
    if isinstance(node, dict):
        names = sorted(n for n in node if n not in _CLASS_KEYS)
        close = difflib.get_close_matches(part, names, n=1)
        has = f"it has {names}" + (f"; did you mean {'.'.join([*parts[:depth], close[0]])!r}?" if close else "")
    elif node is None:
        has = "it is null in the config: set it first"
    else:
        has = f"it is {node!r}"
    return f"Search-space key {key!r} names nothing in the config: {repr(where) if where else 'the config'} has no {part!r} ({has})."


def with_params(base: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with each search-space key set to its value in ``params``.

    Example:
        >>> with_params({"model": {"lr": 0.1}, "data": {"batch_size": 8}}, {"model.lr": 0.5})
        {'model': {'lr': 0.5}, 'data': {'batch_size': 8}}
    """
    config = copy.deepcopy(base)
    for key, value in params.items():
        node, index = locate(config, key)
        node[index] = list(value) if isinstance(value, tuple) else value
    return config


def check_space_fits(parse: Callable[[dict[str, Any]], object], base: dict[str, Any], space: SearchSpace) -> None:
    """Fail before the first trial when a key names nothing in ``base`` or a domain gives a value it rejects.

    ``parse`` checks a whole config and raises when it does not hold (the ``fit`` parser, in the CLI);
    each categorical choice and the low end of each numeric domain is tried.
    """
    for key, domain in space.items():
        probes = domain.choices if isinstance(domain, Categorical) else (domain.low,)
        for value in probes:
            config = with_params(base, {key: value})
            try:
                parse(config)
            except LightningHPOError:
                raise
            except Exception as error:  # noqa: BLE001 - the parser's message says what does not fit
                raise InvalidArgumentError(
                    f"Search-space key {key!r}: the config does not accept the value {value!r} of {domain!r}: {error}"
                ) from None


def by_name(kind: str, value: Any, names: Mapping[str, str], base: type, **kwargs: Any) -> Any:
    """A sampler or pruner given by name (``"sobol"``), built with the ``kwargs`` it takes; instances pass through.

    ``kind`` (``"sampler"`` or ``"pruner"``) names the flag in the error message.
    """
    if value is None or isinstance(value, base):
        return value
    import lightning_hpo

    available = {name: cls for name, cls in names.items() if hasattr(lightning_hpo, cls)}
    cls_name = available.get(str(value).lower())
    if cls_name is None:
        raise InvalidArgumentError(
            f"--tune.{kind} {value!r} is neither a known name ({', '.join(available)}) nor a {base.__name__} "
            f"class path (e.g. lightning_hpo.{next(iter(available.values()))})."
        )
    cls = getattr(lightning_hpo, cls_name)
    accepted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in kwargs.items() if k in accepted})
