"""``edgenet eval`` on a real labelled data set: scikit-learn's handwritten digits.

A tiny EfficientNet is trained once per session on the digits (tests/digits.py), converted to
fp32 and full-int8 .tflite, and every test here reuses that one model.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from digits import NUM_CLASSES

from edgenet.cli.evaluate import evaluate as eval_command
from edgenet.errors import EdgenetError, InputFileError
from edgenet.evaluation.classifier import Classifier, open_classifier
from edgenet.evaluation.evaluate import compare, evaluate, load_dataset, pick_references, read_class_map
from edgenet.results import read_records


def run_eval(*args):
    return CliRunner().invoke(eval_command, [str(a) for a in args] + ["--quiet"])


def test_trained_float_model_is_clearly_accurate(digits_model):
    print(f"keras float top-1 {digits_model.keras_test_top1:.4f}, training {digits_model.train_s:.1f} s, "
          f"conversion {digits_model.convert_s:.1f} s, history {digits_model.history}")
    assert digits_model.data.test_count == 539 and digits_model.data.train_count == 1258
    assert digits_model.keras_test_top1 > 0.9


def test_eval_reports_float_and_int8_with_small_drop(digits_model, tmp_path):
    out = tmp_path / "results.jsonl"
    result = run_eval(digits_model.fp32, digits_model.int8, "--data", digits_model.data.test_dir, "--results", out)
    assert result.exit_code == 0, result.output
    assert digits_model.fp32.name in result.stdout and "agreement" in result.stdout
    fp32, int8 = read_records(out, kind="eval")
    for record in (fp32, int8):
        assert record["model"]["variant"] == "phi0-w0.25-d0.25-r32"
        assert record["accuracy"]["count"] == digits_model.data.test_count
        assert record["accuracy"]["dataset"] == str(digits_model.data.test_dir)
        assert record["device"]["runtime"]["name"] in ("ai_edge_litert", "tflite_runtime", "tensorflow")
        assert len(record["model"]["sha256"]) == 64
    assert (fp32["model"]["quant"], int8["model"]["quant"]) == ("fp32", "int8")
    assert fp32["accuracy"]["agreement_top1"] is None  # the reference itself
    # The fp32 .tflite is the Keras model: same predictions up to float rounding.
    assert abs(fp32["accuracy"]["top1"] - digits_model.keras_test_top1) <= 2 / digits_model.data.test_count
    drop_points = (fp32["accuracy"]["top1"] - int8["accuracy"]["top1"]) * 100
    print(f"fp32 top-1 {fp32['accuracy']['top1']:.4f} top-5 {fp32['accuracy']['top5']:.4f}; int8 top-1 "
          f"{int8['accuracy']['top1']:.4f} top-5 {int8['accuracy']['top5']:.4f}; drop {drop_points:.2f} points; "
          f"agreement {int8['accuracy']['agreement_top1']:.4f}")
    assert fp32["accuracy"]["top1"] > 0.9
    assert drop_points <= 3.0
    assert int8["accuracy"]["agreement_top1"] >= 0.95
    assert f"{drop_points:.2f}" in result.stdout  # the table shows the drop
    # Appending again keeps the earlier records.
    assert run_eval(digits_model.int8, "--data", digits_model.data.test_dir, "--limit", 5, "--results", out).exit_code == 0
    assert len(read_records(out)) == 3


def test_keras_variant_with_weights_matches_the_converted_model(digits_model):
    """A Keras variant goes through the same preprocessing and gives the fp32 .tflite's predictions."""
    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant
    from edgenet.weights.keras_files import load_weights

    variant = parse_variant(digits_model.spec)
    model = build_model(variant, num_classes=NUM_CLASSES)
    load_weights(model, variant, digits_model.weights)
    # open_classifier builds 1000-class Keras models; wrap the 10-class one in the same interface.
    keras_clf = Classifier(name=variant.name, kind="keras", contract=variant.contract, runner=model,
                           variant=variant.name, quant="float32")
    dataset = load_dataset(digits_model.data.test_dir)
    keras_result = evaluate(keras_clf, dataset, progress=False)
    assert keras_result.top1 == pytest.approx(digits_model.keras_test_top1)
    tflite_clf = open_classifier(str(digits_model.fp32))
    int8_clf = open_classifier(str(digits_model.int8))
    assert pick_references([keras_clf, tflite_clf, int8_clf]) == [None, 0, 0]
    tflite_result = evaluate(tflite_clf, dataset, progress=False)
    comparison = compare(tflite_result, keras_result)
    assert comparison.common == digits_model.data.test_count
    assert comparison.agreement_top1 >= 0.995 and abs(comparison.drop_top1_points) <= 0.5


def test_path_label_file_gives_the_same_numbers_as_the_folder(digits_model, tmp_path):
    test_dir = digits_model.data.test_dir
    listing = digits_model.data.root / "test.txt"  # relative paths resolve against the file's folder
    lines = ["# path label", ""]
    for label in range(NUM_CLASSES):
        lines += [f"test/{label}/{p.name} {label}" for p in sorted((test_dir / str(label)).glob("*.png"))]
    listing.write_text("\n".join(lines) + "\n")
    folder_out, list_out = tmp_path / "folder.jsonl", tmp_path / "list.jsonl"
    for data, out in ((test_dir, folder_out), (listing, list_out)):
        result = run_eval(digits_model.fp32, digits_model.int8, "--data", data, "--results", out)
        assert result.exit_code == 0, result.output
    for a, b in zip(read_records(folder_out), read_records(list_out), strict=True):
        assert {k: a["accuracy"][k] for k in ("top1", "top5", "count", "agreement_top1")} == \
               {k: b["accuracy"][k] for k in ("top1", "top5", "count", "agreement_top1")}
    clf = open_classifier(str(digits_model.int8))
    by_folder = evaluate(clf, load_dataset(test_dir), progress=False)
    by_list = evaluate(clf, load_dataset(listing), progress=False)
    assert by_folder.predictions == by_list.predictions and by_folder.labels == by_list.labels


def test_limit_evaluates_the_first_n_images(digits_model, tmp_path):
    out = tmp_path / "r.jsonl"
    result = run_eval(digits_model.int8, "--data", digits_model.data.test_dir, "--limit", 40, "--results", out)
    assert result.exit_code == 0, result.output
    (record,) = read_records(out)
    assert record["accuracy"]["count"] == 40
    full = evaluate(open_classifier(str(digits_model.int8)), load_dataset(digits_model.data.test_dir), progress=False)
    first = evaluate(open_classifier(str(digits_model.int8)), load_dataset(digits_model.data.test_dir), limit=40,
                     progress=False)
    assert first.predictions == full.predictions[:40]
    assert record["accuracy"]["top1"] == pytest.approx(first.top1)


def test_corrupt_image_is_skipped_with_one_line_and_counted(digits_model, tmp_path):
    data = tmp_path / "test"
    shutil.copytree(digits_model.data.test_dir, data)
    broken = data / "3" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    out = tmp_path / "r.jsonl"
    result = run_eval(digits_model.fp32, digits_model.int8, "--data", data, "--results", out)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "broken.png" in line]
    assert len(lines) == 1 and "corrupt" in lines[0]  # once, not once per model
    assert "Traceback" not in result.output
    for record in read_records(out):
        assert record["accuracy"]["count"] == digits_model.data.test_count
    skipped = evaluate(open_classifier(str(digits_model.int8)), load_dataset(data), progress=False).skipped
    assert skipped == ((str(broken), "truncated or corrupt image data"),)


def test_missing_data_or_model_is_one_line_and_nonzero(digits_model, tmp_path):
    result = run_eval(digits_model.int8, "--data", tmp_path / "nowhere")
    assert result.exit_code != 0
    assert result.stderr.strip().count("\n") == 0 and "nowhere" in result.stderr and "no such" in result.stderr
    assert result.stdout == ""
    result = run_eval(tmp_path / "missing.tflite", "--data", digits_model.data.test_dir)
    assert result.exit_code != 0 and "missing.tflite" in result.stderr and result.stderr.strip().count("\n") == 0
    not_a_model = tmp_path / "text.tflite"
    not_a_model.write_text("hello")
    result = run_eval(not_a_model, "--data", digits_model.data.test_dir)
    assert result.exit_code != 0 and "text.tflite" in result.stderr and "Traceback" not in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_eval(digits_model.int8, "--data", empty)
    assert result.exit_code != 0 and "no class sub-folders" in result.stderr


def test_labels_file_maps_class_folders(digits_model, tmp_path):
    test_dir = digits_model.data.test_dir
    clf = open_classifier(str(digits_model.int8))
    plain = evaluate(clf, load_dataset(test_dir), progress=False)
    names = tmp_path / "names.txt"
    names.write_text("# one class per line\n" + "\n".join(str(i) for i in range(NUM_CLASSES)) + "\n")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("".join(f"{i} {i}\n" for i in reversed(range(NUM_CLASSES))))
    assert read_class_map(names) == read_class_map(pairs) == {str(i): i for i in range(NUM_CLASSES)}
    for labels in (names, pairs):
        assert evaluate(clf, load_dataset(test_dir, labels), progress=False).top1 == plain.top1
    # A wrong mapping (every class shifted by one) really changes the answer.
    shifted = tmp_path / "shifted.txt"
    shifted.write_text("".join(f"{i} {(i + 1) % NUM_CLASSES}\n" for i in range(NUM_CLASSES)))
    assert evaluate(clf, load_dataset(test_dir, shifted), progress=False).top1 < 0.2
    synsets = tmp_path / "synsets.txt"  # LOC_synset_mapping.txt style: folder name, then a description
    words = "zero one two three four five six seven eight nine".split()
    synsets.write_text("".join(f"{i} handwritten {word}, digit\n" for i, word in enumerate(words)))
    assert read_class_map(synsets)["7"] == 7
    partial = tmp_path / "partial.txt"
    partial.write_text("0 0\n1 1\n")
    result = run_eval(digits_model.int8, "--data", test_dir, "--labels", partial)
    assert result.exit_code != 0 and "partial.txt" in result.stderr and "'2'" in result.stderr


def test_bad_list_files_and_labels_beyond_the_model(digits_model, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("image.png cat\n")
    with pytest.raises(InputFileError, match="line 1"):
        load_dataset(bad)
    image = next((digits_model.data.test_dir / "0").glob("*.png"))
    beyond = tmp_path / "beyond.txt"
    beyond.write_text(f"{image} 12\n")
    with pytest.raises(EdgenetError, match="class index 12"):
        evaluate(open_classifier(str(digits_model.int8)), load_dataset(beyond), progress=False)
    missing = tmp_path / "missing.txt"
    missing.write_text(f"{image} 0\nnot-there.png 1\n")
    result = evaluate(open_classifier(str(digits_model.int8)), load_dataset(missing), progress=False)
    assert result.count == 1 and result.skipped == ((str(tmp_path / "not-there.png"), "no such file"),)


def test_json_records_are_valid_json_lines(digits_model, tmp_path):
    out = tmp_path / "r.jsonl"
    assert run_eval(digits_model.int8, "--data", digits_model.data.test_dir, "--limit", 3, "--results", out).exit_code == 0
    (line,) = out.read_text().splitlines()
    record = json.loads(line)
    assert record["kind"] == "eval" and record["schema"] == "edgenet.result/1"
    assert 0.0 <= record["accuracy"]["top1"] <= 1.0 and np.isfinite(record["accuracy"]["top5"])


def test_cli_keras_variant_builds_to_fit_its_weights(digits_model):
    """A 10-class weights file builds a 10-class model (the class count is read from the file)."""
    from click.testing import CliRunner

    from edgenet.cli import main

    args = ["eval", digits_model.spec, str(digits_model.fp32), "--weights", str(digits_model.weights),
            "--data", str(digits_model.data.test_dir), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    rows = [line for line in result.stdout.splitlines() if "|" in line and "---" not in line][1:]
    assert len(rows) == 2
    # The Keras model and its fp32 conversion give the same top-1 on the same images.
    top1 = [float(row.split("|")[3]) for row in rows]
    assert top1[0] == pytest.approx(top1[1], abs=0.2)


def test_eval_on_the_edgetpu_refuses_in_one_line_without_library_or_compiled_model(digits_model, tmp_path):
    """The Edge TPU's accuracy is measured on it or not at all: never a CPU figure under its label."""
    from fixtures_tflite import with_unused_edgetpu_op_code

    data = str(digits_model.data.test_dir)
    out = tmp_path / "tpu.jsonl"
    plain = CliRunner().invoke(eval_command, [str(digits_model.int8), "--data", data, "--delegate", "edgetpu",
                                              "--results", str(out), "--quiet"])
    assert plain.exit_code == 1 and "not compiled for the Edge TPU" in plain.output
    assert len(plain.output.strip().splitlines()) == 1 and "Traceback" not in plain.output
    marked = tmp_path / "digits-int8_edgetpu.tflite"
    marked.write_bytes(with_unused_edgetpu_op_code(digits_model.int8.read_bytes()))
    shutil.copy2(digits_model.int8.with_suffix(".json"), marked.with_suffix(".json"))
    nolib = CliRunner().invoke(eval_command, [str(marked), "--data", data, "--delegate", "edgetpu",
                                              "--edgetpu-lib", "/nonexistent/libedgetpu.so.1", "--results", str(out),
                                              "--quiet"])
    assert nolib.exit_code == 1 and "/nonexistent/libedgetpu.so.1 unavailable" in nolib.output
    assert len(nolib.output.strip().splitlines()) == 1
    assert not out.exists()  # no record at all, least of all one labelled edgetpu
    keras = CliRunner().invoke(eval_command, ["lite0", "--data", data, "--delegate", "edgetpu"])
    assert keras.exit_code == 1 and "not Keras variants" in keras.output


def test_eval_records_name_the_delegate_and_json_to_stdout_is_pure(digits_model):
    res = CliRunner().invoke(eval_command, [str(digits_model.int8), "--data", str(digits_model.data.test_dir),
                                            "--limit", "20", "--json", "-", "--quiet"])
    assert res.exit_code == 0, res.output
    (record,) = [json.loads(line) for line in res.stdout.splitlines()]  # the table went to stderr
    assert record["settings"]["delegate"] == "cpu" and record["device"]["delegate"] is None
    assert record["accuracy"]["count"] == 20 and "top-1 %" in res.stderr
