import json

import torch

from snn.cli.main import main

from .conftest import mlp


def test_cli_energy_on_a_saved_module_with_data(tmp_path, capsys):
    torch.manual_seed(0)
    net = mlp()
    model_path = tmp_path / "model.pt"
    torch.save(net, model_path)
    data_path = tmp_path / "batch.pt"
    torch.save((torch.rand(4, 3, 12) * 2, torch.zeros(3)), data_path)
    rc = main(["energy", str(model_path), "--data", str(data_path), "--profile", "45nm_fp32", "--profile", "loihi",
               "--trust-checkpoint"])  # a whole pickled nn.Module
    out = capsys.readouterr().out
    assert rc == 0
    assert "profile 45nm_fp32" in out and "profile loihi" in out and "ANN equivalent" in out
    report = json.loads((tmp_path / "energy_loihi.json").read_text())
    assert report["samples"] == 3 and report["time_steps"] == 4
    assert (tmp_path / "plots" / "energy_45nm_fp32.png").is_file()


def test_cli_energy_errors_are_clear(tmp_path, capsys):
    assert main(["energy", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    torch.save(mlp(), tmp_path / "model.pt")
    assert main(["energy", str(tmp_path / "model.pt")]) == 2
    assert "--trust-checkpoint" in capsys.readouterr().err  # a pickled module is not loaded unasked
    assert main(["energy", str(tmp_path / "model.pt"), "--trust-checkpoint"]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["energy", str(tmp_path / "model.pt"), "--profile", "nope"]) == 2
    assert "available" in capsys.readouterr().err
