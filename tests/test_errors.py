"""One-line messages (edgenet/errors.py): the helpers every layer uses to say what went wrong."""

from __future__ import annotations

import signal
import subprocess
import sys

from edgenet.errors import InputFileError, one_line, signal_name

CONVERTER_LOG = """2026-01-01 W tensorflow/compiler/mlir/lite/flatbuffer_export.cc:1234] TFLite interpreter needs to link Flex
loc(fused["Erf:", "model/erf"]): error: 'tf.Erf' op is neither a custom op nor a flex op
<unknown>:0: note: see current operation: %0 = "tf.Erf"(%arg0)
Some ops are not supported by the native TFLite runtime
"""


def test_one_line_forms():
    assert one_line("a\n  b\tc\n") == "a b c"
    assert one_line("x" * 500) == "x" * 300 and one_line("x" * 500, None) == "x" * 500
    assert one_line("started\n\nTraceback ...\nValueError: bad model\n", pick="last") == "ValueError: bad model"
    assert one_line(CONVERTER_LOG, pick="error").startswith("loc(fused[") and "neither a custom op" in \
        one_line(CONVERTER_LOG, pick="error")
    assert one_line("no marker here\nlast words", pick="error") == "last words"
    assert one_line("   \n", empty="no output") == "no output" and one_line(ValueError()) == ""
    assert str(InputFileError("m.tflite", one_line("cannot\nread"))) == "m.tflite: cannot read"


def test_signal_name_from_a_real_child():
    proc = subprocess.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    assert proc.returncode == -signal.SIGSEGV and signal_name(proc.returncode) == "SIGSEGV"
    assert signal_name(-77) == "signal 77"
