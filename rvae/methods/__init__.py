"""The method registry: one module per method family, each method one :class:`Method` entry.

A method supplies only what is its own:

- ``config``: a frozen dataclass of its hyperparameters (:func:`rvae.params.option` fields, the
  paper's defaults where the paper states them, each with its valid values);
- ``losses(x, nets, config, generator) -> ({group: loss}, logs)``: the scalar to *minimise* for
  each parameter group, from one batch x (B, C, H, W) in [0, 1]; ``nets`` maps network names to
  modules (``nets["vae"]`` is the :class:`rvae.nets.VAE`); ``logs`` maps term names to floats;
- ``groups``: its parameter groups, each with the networks it owns and its optimiser settings
  (the VAE-only methods have one group, ``vae``, Adam at the run's learning rate);
- ``networks(vae, config) -> {name: module}``: networks it trains beside the VAE (e.g. a latent
  discriminator), none by default;
- ``post_step``: hooks ``hook(nets, config)`` run after every optimisation step (e.g. clipping);
- ``alternating``: step the groups one after another, each on a fresh forward pass, instead of
  all from one forward pass.

The training loop (:mod:`rvae.train`) does the rest. Adding a method is one new module in this
folder that calls :func:`register`: it is found by name, and no other module changes. Which
method modules a chapter used is recorded (:func:`used_modules`), so that a new method never
marks another chapter's results stale.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import Tensor, nn

from rvae.errors import ParameterError
from rvae.params import describe

Losses = Callable[..., tuple[dict[str, Tensor], dict[str, float]]]
OPTIMISERS = ("adam", "sgd", "rmsprop")


@dataclass(frozen=True)
class ParameterGroup:
    """Parameters stepped by one optimiser: those of ``networks`` (keys of the nets dict)."""
    name: str
    networks: tuple[str, ...] = ("vae",)
    optimiser: str = "adam"
    learning_rate: float | None = None          # None: the run's learning rate
    betas: tuple[float, float] = (0.9, 0.999)   # Adam's moment decays (sgd and rmsprop ignore them)

    def __post_init__(self) -> None:
        if self.optimiser not in OPTIMISERS:
            raise ValueError(f"unknown optimiser {self.optimiser!r}; valid: {', '.join(OPTIMISERS)}")

    def settings(self, run_learning_rate: float) -> dict[str, Any]:
        """The resolved optimiser settings (what a checkpoint's fingerprint records)."""
        rate = self.learning_rate if self.learning_rate is not None else run_learning_rate
        return {"networks": list(self.networks), "optimiser": self.optimiser, "learning_rate": rate,
                "betas": list(self.betas)}


VAE_ONLY = (ParameterGroup("vae"),)


@dataclass(frozen=True)
class Method:
    """One registered method (see the module docstring for each field's contract)."""
    name: str
    paper: str
    summary: str
    config: type
    losses: Losses
    groups: tuple[ParameterGroup, ...] = VAE_ONLY
    networks: Callable[[nn.Module, Any], dict[str, nn.Module]] | None = None
    post_step: tuple[Callable[[dict[str, nn.Module], Any], None], ...] = ()
    alternating: bool = False

    @property
    def module(self) -> str:
        return self.losses.__module__

    def make_config(self, **fields: Any) -> Any:
        """The method's config with ``fields`` changed from the defaults; unknown fields fail in one line."""
        known = {f.name for f in dataclasses.fields(self.config)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ParameterError(f"method {self.name} has no field {', '.join(map(repr, unknown))}; "
                                 f"valid: {', '.join(sorted(known)) or '(none)'}")
        return self.config(**fields)

    def describe(self) -> str:
        """Several lines: name, paper, summary, config fields, parameter groups, hooks."""
        lines = [f"{self.name}  ({self.paper})", f"    {self.summary}"]
        fields = describe(self.config)
        if fields:
            lines.append("    config " + self.config.__name__ + ":")
            width = max(len(f"{f.name}: {f.type} = {f.default!r}") for f in fields)
            for f in fields:
                valid = f"  valid: {f.valid}" if f.valid else ""
                lines.append(f"      {f'{f.name}: {f.type} = {f.default!r}':<{width}}  {f.help}{valid}")
        else:
            lines.append(f"    config {self.config.__name__}: no fields")
        lines.append("    parameter groups" + (" (alternating updates):" if self.alternating else ":"))
        for group in self.groups:
            rate = "the run's learning rate" if group.learning_rate is None else f"lr {group.learning_rate:g}"
            lines.append(f"      {group.name}: {', '.join(group.networks)}; {group.optimiser}, {rate}, "
                         f"betas {tuple(group.betas)}")
        if self.post_step:
            lines.append("    after every step: " + ", ".join(hook.__name__ for hook in self.post_step))
        return "\n".join(lines)


_REGISTRY: dict[str, Method] = {}
_USED: set[str] = set()
_DISCOVERED = False


def register(method: Method) -> Method:
    """Add a method to the registry (called once by its module); names are unique."""
    if method.name in _REGISTRY and _REGISTRY[method.name].module != method.module:
        raise ValueError(f"method {method.name!r} is registered twice ({_REGISTRY[method.name].module}, {method.module})")
    _REGISTRY[method.name] = method
    return method


def _discover() -> None:
    global _DISCOVERED
    if not _DISCOVERED:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _DISCOVERED = True


def all_methods() -> dict[str, Method]:
    """Every registered method, by name (importing every module of this folder)."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get_method(name: str) -> Method:
    """Look a method up by name (ParameterError listing the valid names), and note its module as used."""
    _discover()
    if name not in _REGISTRY:
        raise ParameterError(f"unknown method {name!r}; valid: {', '.join(sorted(_REGISTRY))}")
    method = _REGISTRY[name]
    _note_used(method.module)
    return method


def _note_used(module_name: str) -> None:
    """Record a method module and the other method modules it draws on (by their source files); a
    method registered from outside this folder (a test's, say) is no source of the package's."""
    if module_name in _USED or not module_name.startswith(__name__ + "."):
        return
    _USED.add(module_name)
    module = sys.modules[module_name]
    for value in vars(module).values():
        source = getattr(value, "__module__", None) or getattr(value, "__name__", None)
        if isinstance(source, str) and source.startswith(__name__ + ".") and source != module_name:
            _note_used(source)


def used_modules() -> list[str]:
    """Source files (relative to the package, e.g. 'methods/vae.py') of the method modules used so far."""
    root = Path(__file__).resolve().parent.parent
    return sorted(str(Path(sys.modules[name].__file__).resolve().relative_to(root)) for name in _USED)
