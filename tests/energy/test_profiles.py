import pytest

from snn.energy import available_profiles, load_profile
from snn.energy.profiles import HardwareProfile

BUILTIN = {"45nm_fp32", "45nm_fp16", "45nm_int8", "memory_aware_45nm", "spike_driven_transformer", "loihi", "truenorth"}


def test_builtin_profiles_load_and_every_constant_cites_a_source():
    assert BUILTIN <= set(available_profiles())
    for name in available_profiles():
        p = load_profile(name)
        assert isinstance(p, HardwareProfile) and p.name == name
        for key in ("mac_pj", "ac_pj", "neuron_update_pj", "spike_pj"):
            assert p.sources[key].strip()
    fp32 = load_profile("45nm_fp32")
    assert (fp32.mac_pj, fp32.ac_pj) == (4.6, 0.9)
    assert (load_profile("45nm_fp16").mac_pj, load_profile("45nm_int8").ac_pj) == (1.5, 0.03)
    assert load_profile("loihi").ac_pj == 23.6


def test_sram_energy_interpolates_the_horowitz_points():
    p = load_profile("memory_aware_45nm")
    assert p.memory_pj_per_byte(8192) == pytest.approx(10 / 8)
    assert p.memory_pj_per_byte(32768) == pytest.approx(20 / 8)
    assert p.memory_pj_per_byte(20480) == pytest.approx(15 / 8)
    assert p.memory_pj_per_byte(10 * 2**20) == pytest.approx(100 / 8)
    assert p.memory_pj_per_byte(0) == 0


def test_unknown_profile_name_lists_the_available_ones():
    with pytest.raises(ValueError) as err:
        load_profile("loihi3")
    for name in BUILTIN:
        assert name in str(err.value)


def test_user_yaml_file_and_missing_source(tmp_path):
    good = tmp_path / "chip.yaml"
    good.write_text(
        "name: chip\nkind: neuromorphic\nconstants:\n"
        "  mac_pj: {value: 1.0, source: a}\n  ac_pj: {value: 2.0, source: b}\n"
        "  neuron_update_pj: {value: 3.0, source: c}\n  spike_pj: {value: 0.5, source: d}\n"
    )
    p = load_profile(good)
    assert (p.ac_pj, p.neuron_update_pj, p.synop_count) == (2.0, 3.0, "exact")
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("source: b", "source: ''"))
    with pytest.raises(ValueError, match="ac_pj.source"):
        load_profile(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_profile(tmp_path / "missing.yaml")
    with pytest.raises(TypeError, match="profile"):
        load_profile(3)
