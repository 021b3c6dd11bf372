import pytest

from snn.kernels import ir
from snn.kernels.dynamics import Dynamics


def test_parse_accepts_assignments_and_accumulations():
    program = ir.parse("""
        h = v + x * k
        # a comment line is ignored
        g_k += gh * x
    """)
    assert [(st.target, st.accumulate) for st in program] == [("h", False), ("g_k", True)]


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("h = v ** 2", "operator"),
        ("h = sin(v)", "unsupported call"),
        ("h, v = 1, 2", "unsupported statement"),
        ("for i in x:\n  h = 1", "does not parse"),
        ("del h", "unsupported statement"),
        ("h = 'text'", "literal"),
        ("h = v if x else 0", "unsupported syntax"),
        ("h = v -", "does not parse"),
    ],
)
def test_parse_rejects_syntax_outside_the_language(source, fragment):
    with pytest.raises(ir.IRError, match=fragment):
        ir.parse(source)


def test_names_read_lists_inputs_not_functions_or_locals():
    program = ir.parse("a = exp(x) + b\nc = a * spike(d)\ne += c")
    assert ir.names_read(program) == {"x", "b", "d", "e"}


def test_rename_renames_reads_and_targets_but_never_functions():
    program = ir.rename(ir.parse("exp = 1.0\ny = exp(x) + exp"), {"x": "z", "exp": "q", "y": "w"})
    printer = ir.PythonPrinter({"exp": lambda a: f"EXP({a})"})
    assert printer.program(program) == "q = 1.0\nw = (EXP(z) + q)"


def test_inline_surrogate_substitutes_argument_and_prefixes_temporaries():
    surrogate = ir.parse("t = alpha * x\nsg = t * t")
    program = ir.inline_surrogate(ir.parse("u = sg(h - th)\nt = u + 1.0"), surrogate)
    text = ir.PythonPrinter({}).program(program)
    assert "_sg0_x = (h - th)" in text and "_sg0_t = (alpha * _sg0_x)" in text
    assert text.splitlines()[-1] == "t = (u + 1.0)"  # the program's own `t` is untouched


def test_sg_must_be_a_whole_right_hand_side():
    with pytest.raises(ir.IRError, match="whole right-hand side"):
        ir.inline_surrogate(ir.parse("u = 2.0 * sg(h)"), ir.parse("sg = x"))


def test_c_printer_declares_locals_once_and_types_literals():
    text = ir.CPrinter().program(ir.parse("a = exp(x) * 2\na = a + spike(a)\ng += a"), declared={"g"})
    assert text.splitlines() == [
        "acc_t a = (SNN_EXP(x) * ((acc_t)2.0));",
        "a = (a + SNN_HEAVISIDE(a));",
        "g += a;",
    ]


def _dynamics(**overrides):
    fields = dict(
        key="toy", states=("v",), lane_params=("k",), scalars=("th",), saved=("h",),
        forward="h = v * k + x\ns = spike(h - th)\nv = h - s",
        restore="v = h - s",
        backward="sgv = sg(h - th)\ngh = g_v + (gs - g_v) * sgv\ngx = gh\ng_k += gh * v\ng_v = gh * k",
        surrogate="sg = 1.0 / (1.0 + abs(x))",
    )
    fields.update(overrides)
    return Dynamics(**fields)


def _renamed(**mapping: str) -> dict:
    """The toy declaration's fields with names replaced everywhere (gradient names ``g_<name>`` included)."""
    import re

    fields = {k: v for k, v in _dynamics().__dict__.items() if k in ("states", "lane_params", "scalars", "forward",
                                                                      "restore", "backward")}
    full = {**mapping, **{f"g_{old}": f"g_{new}" for old, new in mapping.items()}}

    def swap(text: str) -> str:
        return re.sub(r"\b\w+\b", lambda m: full.get(m.group(0), m.group(0)), text)

    return {k: tuple(swap(n) for n in v) if isinstance(v, tuple) else swap(v) for k, v in fields.items()}


def test_dynamics_accepts_a_consistent_declaration():
    assert _dynamics().all_scalars == ("th",)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (dict(forward="h = v * k + x\nv = h"), r"forward program must assign \['s'\]"),
        (dict(forward="h = v * q + x\ns = spike(h)\nv = h"), r"forward program reads undefined names \['q'\]"),
        (dict(restore="w = h"), r"restore program must assign \['v'\]"),
        (dict(backward="gx = gs\ng_v = gs"), r"backward program must assign \['g_k'\]"),
        (dict(surrogate="sg = beta * x"), r"surrogate program reads undefined names \['beta'\]"),
    ],
)
def test_dynamics_rejects_inconsistent_declarations(overrides, fragment):
    with pytest.raises(ir.IRError, match=fragment):
        _dynamics(**overrides)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        # a state called `i` used to reach numba as the loop index and fail with a TypingError in generated code
        (_renamed(v="i"), r"states: 'i' is a reserved name"),
        (_renamed(th="T"), r"scalars: 'T' is a reserved name"),
        (dict(forward="tmp = v * k\nh = tmp + x\ns = spike(h - th)\nfloat = h - s\nv = float"),
         r"the forward program: 'float' is a reserved name"),
        (dict(forward="a_x = v * k\nh = a_x + x\ns = spike(h - th)\nv = h - s"),
         r"'a_x' starts with 'a_', a prefix reserved"),
        (_renamed(k="snn_k"), r"'snn_k' starts with 'snn_'"),
        (dict(forward="g_h = v * k + x\nh = g_h\ns = spike(h - th)\nv = h - s"),
         r"the forward program uses 'g_h'; names 'g_<name>' are the gradients"),
        (dict(surrogate="np = abs(x)\nsg = 1.0 / (1.0 + np)"), r"the surrogate program: 'np' is a reserved name"),
    ],
)
def test_dynamics_rejects_names_the_generated_kernels_reserve(overrides, fragment):
    with pytest.raises(ir.IRError, match=fragment):
        _dynamics(**overrides)


def test_a_torch_only_surrogate_is_accepted_by_the_reference_and_refused_by_the_generators():
    from snn.kernels import cuda_source

    d = _dynamics(surrogate=None, surrogate_function=lambda x: 1.0 / (1.0 + x.abs()))
    assert not d.declared_surrogate
    with pytest.raises(ir.IRError, match="only the torch reference backend can run"):
        cuda_source.generate_source(d, "float32", record=False)
    with pytest.raises(ir.IRError, match="give a surrogate program or a surrogate_function"):
        _dynamics(surrogate=None)


def test_the_kernel_language_and_code_generators_import_without_torch_or_neuron_models():
    import subprocess
    import sys

    code = ("import sys, snn.kernels.ir, snn.kernels.dynamics, snn.kernels.abi, snn.kernels.cuda_source; "
            "print(sorted(m for m in ('torch', 'snn.neuron_models', 'snn.training') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
