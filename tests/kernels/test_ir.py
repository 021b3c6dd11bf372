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
