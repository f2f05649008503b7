"""The exported names stay as intended, and importing edgenet stays light."""

import subprocess
import sys

import edgenet

EXPECTED = {
    "Architecture", "BenchParams", "BenchResult", "ConvertOptions", "ConvertRequest", "EdgenetError", "InputFileError",
    "LatencyModel", "MissingDependencyError", "PreprocessContract", "SweepParams", "TFLiteModel", "VARIANTS",
    "Variant", "VariantError", "architecture", "build_model", "check_model", "compound_coefficients",
    "convert_variants", "custom_variant", "evaluate", "load_calibration", "load_image", "load_weights",
    "map_checkpoint", "open_classifier", "parse_variant", "parse_variant_list", "predict_images", "preprocess",
    "read_checkpoint", "run_sweep", "save_weights", "select", "suggest_custom_phi", "write_report",
}


def test_exports_are_exactly_the_intended_ones():
    assert set(edgenet.__all__) == EXPECTED | {"__version__"}


def test_the_old_name_of_the_conversion_request_warns_once_and_still_works():
    import warnings

    from edgenet.convert import api

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = api.ConvertOptions
    assert old is api.ConvertRequest
    assert [str(w.message) for w in caught] == [
        "edgenet.convert.api.ConvertOptions is deprecated: use ConvertRequest (same fields, plus target)"]


def test_every_export_resolves():
    for name in edgenet.__all__:
        assert getattr(edgenet, name) is not None


def test_import_and_cli_do_not_load_tensorflow():
    code = ("import sys, edgenet, edgenet.cli, edgenet.runtime.interpreter, edgenet.bench, edgenet.evaluation.classifier, "
            "edgenet.evaluation.evaluate, edgenet.evaluation.predict, edgenet.edgetpu.check, edgenet.decide.select, edgenet.sweep, edgenet.decide.report;"
            "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "edgenet", "--version"], capture_output=True, text=True, check=True)
    assert edgenet.__version__ in out.stdout
