"""``@tunable``: declare a LightningModule's search space next to the ``__init__`` it tunes."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.space import Domain, SearchSpace

__all__ = ["tunable", "search_space_of", "init_arguments", "SPACE_ATTRIBUTE"]

#: Attribute under which ``@tunable`` stores a LightningModule's search space.
SPACE_ATTRIBUTE = "__lightning_hpo_space__"

_C = TypeVar("_C", bound=type)


def tunable(**domains: Domain) -> Callable[[_C], _C]:
    """Attach a search space to a LightningModule class; the class is returned unchanged otherwise.

    Every name must be an argument of the class's ``__init__`` (checked now, not at the first trial).
    The class stays an ordinary LightningModule: it pickles, subclasses, ``save_hyperparameters()``
    and ``load_from_checkpoint`` work as before. A subclass inherits the space, and may decorate again
    to replace it. A conditional parameter names its parents by their ``__init__`` names
    (``momentum=Float(0.0, 0.99, when={"optimizer": "sgd"})``); when inactive it is not passed, so
    the ``__init__`` default applies.

    Example:
        >>> import lightning.pytorch as pl
        >>> from lightning_hpo import Float, Categorical
        >>> @tunable(lr=Float(1e-5, 1e-1, log=True), optimizer=Categorical(["adam", "sgd"]))
        ... class Classifier(pl.LightningModule):
        ...     def __init__(self, lr: float = 1e-3, optimizer: str = "adam"):
        ...         super().__init__()
        >>> sorted(search_space_of(Classifier))
        ['lr', 'optimizer']
    """
    if not domains:
        raise InvalidArgumentError(
            "@tunable needs at least one parameter domain, e.g. @tunable(lr=Float(1e-5, 1e-1, log=True))."
        )
    space = SearchSpace(domains)

    def decorate(cls: _C) -> _C:
        import lightning.pytorch as pl

        if not (inspect.isclass(cls) and issubclass(cls, pl.LightningModule)):
            raise ArgumentTypeError(f"@tunable decorates LightningModule subclasses, not {cls!r}.")
        _check_init_takes(cls, space)
        setattr(cls, SPACE_ATTRIBUTE, space)
        return cls

    return decorate


def _check_init_takes(cls: type, space: SearchSpace) -> None:
    """Raise unless every name of ``space`` is an argument of ``cls.__init__`` (any name, with ``**kwargs``)."""
    accepted, takes_any = init_arguments(cls)
    if takes_any:
        return
    for name in space:
        if name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            raise InvalidArgumentError(
                f"@tunable on {cls.__name__}: {name!r} is not an argument of {cls.__name__}.__init__ "
                f"(its arguments are {accepted})" + (f"; did you mean {close[0]!r}?" if close else ".")
            )


def search_space_of(cls: type) -> SearchSpace | None:
    """The space ``@tunable`` attached to ``cls`` (or a base class), or ``None``."""
    space: Any = getattr(cls, SPACE_ATTRIBUTE, None)
    return space


def init_arguments(cls: type) -> tuple[list[str], bool]:
    """The arguments ``cls.__init__`` takes by name (``self`` aside), and whether it takes any name (``**kwargs``)."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = [p.name for p in parameters if p.kind in named and p.name != "self"]
    return accepted, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
