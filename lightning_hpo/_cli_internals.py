"""The one place where lightning_hpo's CLI uses private members of Lightning's ``LightningCLI``.

LightningCLI has no public way to add a subcommand that is not a ``Trainer`` method, nor to build its
classes again from another config, and ``tune`` needs both. :class:`LightningCLIInternals` does them
with the members listed in :data:`PRIVATE_METHODS` and :data:`PRIVATE_ATTRIBUTES`; the rest of
:mod:`lightning_hpo.cli` reaches those members only through its methods. ``tests/test_cli.py``
checks each member against the installed Lightning and fails, naming the member, when one is missing
or its parameters changed: a Lightning upgrade that breaks the CLI breaks here.
"""

from __future__ import annotations

import argparse
import atexit
import inspect
from typing import Any

from jsonargparse import class_from_function
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.cli import LightningCLI as _LightningCLI
from typing_extensions import override

__all__ = ["PRIVATE_ATTRIBUTES", "PRIVATE_METHODS", "LightningCLIInternals"]

#: The private methods of LightningCLI used here -> their parameters in the Lightning versions tested
#: (2.6): names, ``*``/``**`` for variadic ones, ``=`` after those with a default.
PRIVATE_METHODS: dict[str, str] = {
    "_add_subcommands": "self, parser, **kwargs",
    "_prepare_subcommand_parser": "self, klass, subcommand, **kwargs",
    "_add_arguments": "self, parser",
    "_run_subcommand": "self, subcommand",
    "_parser": "self, subcommand",
    "_set_seed": "self",
    "_get": "self, config, key, default=",
}
#: Private attributes of a LightningCLI run with a subcommand: the method arguments of each
#: subcommand, and the cached config dump that becomes the model's hyperparameters.
PRIVATE_ATTRIBUTES = ("_subcommand_method_arguments", "config_dump")


class LightningCLIInternals(_LightningCLI):
    """Lightning's ``LightningCLI`` with a ``tune`` subcommand wired in; the base of ``lightning_hpo.cli.LightningCLI``.

    ``tune`` is a method of the CLI (the subclass's), not of the Trainer: its parser takes that method's arguments
    under ``--tune.*``, and running it calls the method between the ``before_tune`` and ``after_tune``
    hooks, as Lightning runs the others. The other subcommands ignore a ``tune:`` section, so one
    config file serves ``tune`` and ``fit``.
    """

    @override
    def _add_subcommands(self, parser: LightningArgumentParser, **kwargs: Any) -> None:
        # Lightning takes each subcommand's description from getattr(trainer_class, name). Trainer has
        # no `tune`, so lend the class one while the parsers are built; trainers are built later from
        # the user's own class.
        trainer_class = self.trainer_class
        klass = trainer_class if isinstance(trainer_class, type) else class_from_function(trainer_class)
        if not hasattr(klass, "tune"):
            self.trainer_class = type(klass.__name__, (klass,), {"tune": type(self).tune})
        try:
            super()._add_subcommands(parser, **kwargs)
        finally:
            self.trainer_class = trainer_class

    @override
    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        if subcommand != "tune":
            parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
            # Accepted and left out of the parsed config (and of the config.yaml Lightning saves).
            parser.add_argument("--tune", type=dict[str, Any] | None, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            return parser
        parser = self.init_parser(**kwargs)
        self._add_arguments(parser)
        # Under --tune.*, so they never clash with the model's, data's or trainer's arguments.
        added = parser.add_method_arguments(type(self), "tune", nested_key="tune")
        self._subcommand_method_arguments["tune"] = added
        return parser

    @override
    def _run_subcommand(self, subcommand: str) -> None:
        if subcommand != "tune":
            atexit.unregister(_destroy_process_group_left_alive)  # once, however many subcommands a process runs
            atexit.register(_destroy_process_group_left_alive)
            super()._run_subcommand(subcommand)
            return
        before, after = getattr(self, "before_tune", None), getattr(self, "after_tune", None)
        if callable(before):
            before()
        options = self.config_init["tune"]["tune"]
        self.tune(**{name: options[name] for name in inspect.signature(self.tune).parameters})
        if callable(after):
            after()

    # -- what lightning_hpo.cli uses to build and run one trial ---------------------------------

    def _subcommand_parser(self, subcommand: str) -> LightningArgumentParser:
        return self._parser(subcommand)

    def _run_lightning_subcommand(self, subcommand: str) -> None:
        """Run ``fit`` (or another Trainer method) as Lightning does, with its before/after hooks."""
        super()._run_subcommand(subcommand)

    def _seed_from_config(self) -> None:
        """Seed with the config's ``seed_everything``, as LightningCLI does before it builds the classes."""
        self._set_seed()

    def _trainer_init_config(self) -> dict[str, Any]:
        """The trainer's arguments in the config being built (``config_init``)."""
        return self._get(self.config_init, "trainer", default={})

    def _forget_config_dump(self) -> None:
        """Drop LightningCLI's cached dump of the config, which it stores as the model's hyperparameters."""
        self.__dict__.pop("config_dump", None)


def _destroy_process_group_left_alive() -> None:
    """Lightning leaves the process group of a DDP ``fit`` alive; a gloo group still alive when the
    interpreter exits can abort the process ("terminate called without an active exception",
    pytorch/pytorch#179291), failing a ``torchrun ... fit`` whose training succeeded."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
