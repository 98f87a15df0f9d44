"""Swap every activation call site of a foreign model for a module of our own.

Models written elsewhere (torchvision's VGG11, ResNet18) apply ReLU through modules
that may be called more than once (a ResNet block calls ``self.relu`` twice) or through
functions. Tracing the model with torch.fx turns each application into a graph node, so
each call site gets its own module, with the feature shape it sees there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

ActFactory = Callable[[Sequence[int]], nn.Module]
ACTIVATION_MODULES = (nn.ReLU,)
ACTIVATION_FUNCTIONS = (F.relu, torch.relu)


def activation_sites(graph_module: fx.GraphModule) -> list[fx.Node]:
    """The graph's activation applications, in execution order."""
    sites = []
    for node in graph_module.graph.nodes:
        if node.op == "call_module":
            if isinstance(graph_module.get_submodule(node.target), ACTIVATION_MODULES):
                sites.append(node)
        elif node.op == "call_function" and node.target in ACTIVATION_FUNCTIONS:
            sites.append(node)
    return sites


def convert_activations(
    model: nn.Module, factory: ActFactory, example: torch.Tensor, last: int | None = None
) -> fx.GraphModule:
    """A traced copy of ``model`` whose last ``last`` activation sites (all if None) are
    new modules from ``factory``; the others keep the original activation."""
    traced = fx.symbolic_trace(model)
    ShapeProp(traced).propagate(example)
    sites = activation_sites(traced)
    chosen = sites if last is None else sites[len(sites) - last :] if last else []
    for index, node in enumerate(chosen):
        name = f"activation_site_{index}"
        shape = tuple(node.meta["tensor_meta"].shape[1:])
        traced.add_submodule(name, factory(shape))
        with traced.graph.inserting_after(node):
            replacement = traced.graph.call_module(name, (node.args[0],))
        node.replace_all_uses_with(replacement)
        traced.graph.erase_node(node)
    traced.graph.lint()
    traced.delete_all_unused_submodules()
    traced.recompile()
    return traced
