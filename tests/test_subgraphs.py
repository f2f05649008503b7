"""Cutting a real .tflite graph into sub-models that run on their own (LiteRT's reader, no TensorFlow)."""

from __future__ import annotations

import numpy as np
from fixtures_tflite import tiny_tflite_models

from edgenet.runtime.interpreter import make_interpreter
from edgenet.runtime.subgraphs import chunk_model_bytes, chunks_at, liveness, model_object


def test_chunks_at_every_cut_chain_to_the_whole_models_output():
    tiny = tiny_tflite_models()
    data = tiny.int8.read_bytes()
    model = model_object(data)
    graph = model.subgraphs[0]
    n = len(graph.operators)
    _, _, live = liveness(model)
    assert all(b > 0 for b in live[:n])  # the input, then always some activation, crosses each cut
    chunks = chunks_at(model, [(k, k + 1) for k in range(n)])  # one operator per chunk
    assert [c.start for c in chunks] == list(range(n))
    whole = make_interpreter(data, 1)
    whole.resize_tensor_input(whole.get_input_details()[0]["index"], (1, tiny.resolution, tiny.resolution, 3))
    whole.allocate_tensors()
    detail = whole.get_input_details()[0]
    x = np.random.default_rng(0).integers(-128, 127, size=(1, tiny.resolution, tiny.resolution, 3), dtype=np.int8)
    whole.set_tensor(detail["index"], x)
    whole.invoke()
    store = {int(detail["index"]): x}
    for chunk in chunks:
        sub_bytes = chunk_model_bytes(model, chunk, keep_all=False)
        sub = make_interpreter(sub_bytes, 1)
        # only the tensors read later (or the graph's outputs) are outputs of a chunk cut this way
        assert sorted(d["index"] for d in sub.get_output_details()) == sorted(chunk.outputs)
        for t in chunk.inputs:
            sub.resize_tensor_input(t, store[t].shape)
        sub.allocate_tensors()
        for t in chunk.inputs:
            sub.set_tensor(t, store[t])
        sub.invoke()
        for t in chunk.outputs:
            store[t] = sub.get_tensor(t)
    out = int(graph.outputs[0])
    np.testing.assert_array_equal(store[out], whole.get_tensor(out))
