"""ConvertRequest (edgenet/convert/request.py): the one home of every conversion option rule.

A valid request round-trips through JSON; every invalid combination fails in one line naming the option,
raised from the request module itself, the same line from the Python API and the CLI (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TINY_SPEC
from hypothesis import given, settings
from hypothesis import strategies as st

from edgenet.cli import main
from edgenet.convert import request as request_module
from edgenet.convert.calibrator import CALIBRATORS
from edgenet.convert.modes import CALIBRATED_MODES, IO_TYPES, QUANT_MODES
from edgenet.convert.ranges import RANGE_METHODS
from edgenet.convert.request import EDGETPU_IO, ROUNDING_METHODS, TARGETS, ConvertRequest, WorkerJob
from edgenet.errors import EdgenetError


@st.composite
def valid_requests(draw) -> dict:
    """Options a user may combine, drawn so that each rule's condition holds (every field varies)."""
    target = draw(st.sampled_from(TARGETS))
    quant = "int8" if target == "edgetpu" else draw(st.sampled_from(QUANT_MODES))
    ios = EDGETPU_IO if target == "edgetpu" else IO_TYPES if quant == "int8" else ("float",)
    calibrator = draw(st.sampled_from(CALIBRATORS))
    repairs = quant in CALIBRATED_MODES and calibrator == "edgenet"
    min_agreement = draw(st.none() | st.floats(0.5, 100)) if repairs else None
    rungs = min_agreement is not None and quant == "int8" and target == "cpu"
    return dict(
        quant=quant, io=draw(st.none() | st.sampled_from(ios)), calibrator=calibrator, target=target,
        weights=draw(st.none() | st.just(Path("w.weights.h5"))), calib=draw(st.sampled_from(["default", "photos"])),
        samples=draw(st.integers(1, 500)), seed=draw(st.integers(0, 2**31)),
        batch_size=1 if target == "edgetpu" else draw(st.sampled_from([1, None])),
        holdout=draw(st.none() | st.just(Path("held"))),
        ranges=draw(st.sampled_from(RANGE_METHODS)) if repairs else "minmax",
        bias_correction=draw(st.booleans()) if repairs else False,
        weight_rounding=(rounding := draw(st.booleans()) if repairs and quant == "int8" else False),
        rounding_method=draw(st.sampled_from(ROUNDING_METHODS))
        if quant == "int8" and (rounding or min_agreement is not None) else "gptq",
        min_agreement=min_agreement,
        allow_float=draw(st.booleans()) if rungs else False,
        allow_int16=draw(st.booleans()) if rungs else False,
        max_latency_cost=draw(st.floats(0, 500)),
        out_dir=Path("out"), force=draw(st.booleans()), progress=draw(st.booleans()),
    )


@settings(max_examples=100, deadline=None)
@given(valid_requests())
def test_a_valid_request_round_trips_through_json(kwargs):
    assert set(kwargs) == set(ConvertRequest.__dataclass_fields__)  # every field drawn
    request = ConvertRequest(**kwargs)
    again = ConvertRequest.from_json(request.to_json())
    assert again == request and again.to_json() == request.to_json()
    assert json.loads(request.to_json())["io"] in IO_TYPES  # io resolved when made, never None


#: (options, the one line): every rule of the request, each case breaking exactly one.
INVALID = [
    (dict(quant="int4"), "unknown --quant 'int4'; choose from fp32, fp16, dynamic, int8, int16x8"),
    (dict(io="int4"), "unknown --io 'int4'; choose from float, int8, uint8"),
    (dict(calibrator="fast"), "unknown --calibrator 'fast'; choose from edgenet, tflite"),
    (dict(ranges="kl"), "unknown --ranges 'kl'; choose from minmax, percentile, mse, auto"),
    (dict(target="tpu"), "unknown --target 'tpu'; choose from cpu, edgetpu"),
    (dict(quant="fp16", io="uint8"), "--io uint8 needs --quant int8 (a fp16 model has float input and output)"),
    (dict(samples=0), "--samples must be at least 1, got 0"),
    (dict(batch_size=4), "--batch-size must be 1 or none, got 4"),
    (dict(max_latency_cost=-1), "--max-latency-cost must be a percentage >= 0, got -1"),
    (dict(min_agreement=0), "--min-agreement must be a percentage in (0, 100], got 0"),
    (dict(min_agreement=101), "--min-agreement must be a percentage in (0, 100], got 101"),
    (dict(quant="fp16", bias_correction=True),
     "--ranges, --bias-correction, --weight-rounding and --min-agreement need --quant int8 or int16x8"),
    (dict(calibrator="tflite", ranges="mse"),
     "--ranges, --bias-correction, --weight-rounding and --min-agreement need --calibrator edgenet"),
    (dict(quant="int16x8", weight_rounding=True), "--weight-rounding applies to --quant int8"),
    (dict(rounding_method="bitflip"), "unknown --rounding-method 'bitflip'; choose from gptq, adaround, brecq, qdrop"),
    (dict(rounding_method="brecq"), "--rounding-method brecq chooses how int8 weights are re-rounded: it needs "
                                    "--weight-rounding or --min-agreement with --quant int8"),
    (dict(rounding_method="adaround"), "--rounding-method adaround chooses how int8 weights are re-rounded: it "
                                       "needs --weight-rounding or --min-agreement with --quant int8"),
    (dict(allow_float=True), "--allow-float lets the accuracy budget keep ops in float: it needs --min-agreement"),
    (dict(quant="int16x8", allow_float=True, min_agreement=99),
     "--allow-float applies to --quant int8"),
    (dict(allow_int16=True), "--allow-int16 is a rung of the accuracy budget of an int8 model: it needs --quant "
                             "int8 and --min-agreement"),
    # The Edge TPU's refusals (they were in the CLI before).
    (dict(target="edgetpu", allow_float=True, min_agreement=99),
     "--allow-float cannot be used with --target edgetpu (the Edge TPU runs 8-bit full-integer only)"),
    (dict(target="edgetpu", allow_int16=True, min_agreement=99),
     "--allow-int16 cannot be used with --target edgetpu (the Edge TPU runs 8-bit full-integer only)"),
    (dict(target="edgetpu", quant="fp16"),
     "--target edgetpu needs full-integer --quant int8 (the Edge TPU runs 8-bit only)"),
    (dict(target="edgetpu", batch_size=None), "--target edgetpu needs --batch-size 1 (the Edge TPU needs static shapes)"),
    (dict(target="edgetpu", io="float"), "--target edgetpu needs --io uint8 or int8, not float"),
    # Types, as JSON can bring them.
    (dict(samples="100"), "--samples must be a whole number, got '100'"),
    (dict(samples=True), "--samples must be a whole number, got True"),
    (dict(bias_correction="yes"), "--bias-correction must be true or false, got 'yes'"),
    (dict(min_agreement=float("nan")), "--min-agreement must be a finite number, got nan"),
    (dict(quant=None), "--quant must not be empty"),
    (dict(weights=3), "--weights must be a path, got 3"),
]


@pytest.mark.parametrize("kwargs, line", INVALID, ids=[next(iter(k)) + "-" + str(i) for i, (k, _) in
                                                       enumerate(INVALID)])
def test_every_invalid_combination_is_one_line_from_the_request(kwargs, line):
    with pytest.raises(EdgenetError) as info:
        ConvertRequest(**kwargs)
    assert str(info.value) == line
    # ... raised by the request module itself: there is no second copy of the rule elsewhere.
    assert Path(info.traceback[-1].path).name == Path(request_module.__file__).name
    with pytest.raises(EdgenetError) as again:  # JSON brings the same line
        ConvertRequest.from_json(json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in kwargs.items()}))
    assert str(again.value) == line


#: CLI spelling of INVALID cases that click's own choices and ranges do not already refuse.
CLI_CASES = [
    (["--quant", "fp16", "--io", "uint8"], dict(quant="fp16", io="uint8")),
    (["--quant", "fp16", "--bias-correction"], dict(quant="fp16", bias_correction=True)),
    (["--calibrator", "tflite", "--ranges", "mse"], dict(calibrator="tflite", ranges="mse")),
    (["--quant", "int16x8", "--weight-rounding"], dict(quant="int16x8", weight_rounding=True)),
    (["--rounding-method", "adaround"], dict(rounding_method="adaround")),
    (["--rounding-method", "brecq"], dict(rounding_method="brecq")),
    (["--allow-float"], dict(allow_float=True)),
    (["--allow-int16"], dict(allow_int16=True)),
    (["--target", "edgetpu", "--allow-float", "--min-agreement", "99"],
     dict(target="edgetpu", allow_float=True, min_agreement=99)),
    (["--target", "edgetpu", "--allow-int16", "--min-agreement", "99"],
     dict(target="edgetpu", allow_int16=True, min_agreement=99)),
    (["--target", "edgetpu", "--quant", "fp16"], dict(target="edgetpu", quant="fp16")),
    (["--target", "edgetpu", "--batch-size", "none"], dict(target="edgetpu", batch_size=None)),
    (["--target", "edgetpu", "--io", "float"], dict(target="edgetpu", io="float")),
]


@pytest.mark.parametrize("args, kwargs", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_the_cli_refuses_with_the_requests_own_line(tmp_path, args, kwargs):
    line = dict((tuple(sorted(k.items())), m) for k, m in INVALID)[tuple(sorted(kwargs.items()))]
    result = CliRunner().invoke(main, ["convert", TINY_SPEC, "-o", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert errors == [f"Error: {line}"] and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_json_is_strict():
    with pytest.raises(EdgenetError, match=r"^conversion request: unknown option 'quantization'; known: quant, io"):
        ConvertRequest.from_json('{"quantization": "int8"}')
    with pytest.raises(EdgenetError, match=r"^conversion request: not JSON"):
        ConvertRequest.from_json("{quant: int8}")
    with pytest.raises(EdgenetError, match=r"^conversion request: expected a JSON object, got list"):
        ConvertRequest.from_json("[]")


def test_defaults_are_resolved_when_made():
    assert ConvertRequest().io == "int8" and ConvertRequest(quant="fp16").io == "float"
    assert ConvertRequest(target="edgetpu").io == "uint8"  # what classic Coral examples feed
    assert ConvertRequest(weights="w.h5").weights == Path("w.h5")  # JSON and Python spell paths as text
    request = ConvertRequest()
    with pytest.raises(AttributeError):
        request.quant = "fp32"  # frozen


def test_the_worker_job_round_trips():
    job = WorkerJob(request=ConvertRequest(quant="int8", min_agreement=99.5), variant_spec=TINY_SPEC,
                    model_out="m.tmp", model_path="m.tflite", result_out="r.json", calib_npy="c.npy",
                    holdout_npy="h.npy", holdout_images=2, holdout_source="held", holdout_groups=(0, 0, 1, 1))
    assert WorkerJob.from_json(job.to_json()) == job
    bad = json.loads(job.to_json())
    bad["request"]["allow_float"] = True
    bad["request"]["min_agreement"] = None
    with pytest.raises(EdgenetError, match="^--allow-float lets the accuracy budget"):
        WorkerJob.from_json(json.dumps(bad))
    with pytest.raises(EdgenetError, match="^conversion job: unknown field 'quiet'"):
        WorkerJob.from_json(json.dumps({**json.loads(job.to_json()), "quiet": True}))
