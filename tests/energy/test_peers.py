"""Cross-checks against SpikingJelly 2.0's SynOpCounter and NeuroBench's SynapticOperations."""
import pytest
import torch
from torch import nn

from snn.energy import count_operations, estimate

from .conftest import ConvSNN, mlp

pytestmark = pytest.mark.peers


class Flat(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x.flatten(0, 1))


def _sj_synops(model, x):
    op_counter = pytest.importorskip("spikingjelly.activation_based.op_counter")
    counter = op_counter.SynOpCounter()
    with torch.no_grad(), op_counter.DispatchCounterMode([counter]):
        model(x)
    return counter.get_total()


@pytest.mark.parametrize("layer", [
    nn.Linear(16, 9),
    nn.Conv2d(4, 6, 3, padding=1),
    nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2),
    nn.Conv2d(4, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=4),
    nn.Conv1d(4, 6, 5, stride=2, padding=2, groups=2),
], ids=["linear", "conv_pad", "conv_stride_groups", "conv_dilation_groups4", "conv1d"])
def test_synops_equal_spikingjelly_synopcounter(layer):
    torch.manual_seed(0)
    shape = {nn.Linear: (16,), nn.Conv2d: (4, 7, 9), nn.Conv1d: (4, 13)}[type(layer)]
    x = (torch.rand(3, 2, *shape) < 0.3).float()
    model = layer.eval() if isinstance(layer, nn.Linear) else Flat(layer).eval()
    ours = sum(c.total("synops") for c in count_operations(model, x).layers.values())
    assert ours == _sj_synops(model, x) > 0


def test_whole_conv_snn_synops_equal_spikingjelly():
    torch.manual_seed(1)
    net = ConvSNN().eval()
    x = torch.rand(3, 2, 2, 8, 8) * 2
    counter = count_operations(net, x)
    ours = sum(c.total("synops") for c in counter.layers.values())
    assert ours == _sj_synops(net, x) > 0


def test_effective_acs_and_macs_equal_neurobench():
    try:
        from neurobench.metrics.workload import SynapticOperations
        from neurobench.models import TorchModel
    except ImportError as err:  # e.g. a NeuroBench build that needs torchaudio
        pytest.skip(f"neurobench does not import here: {err}")

    class BatchFirst(nn.Module):  # NeuroBench feeds [B, T, ...]
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.transpose(0, 1))

    torch.manual_seed(2)
    net = mlp(sizes=(12, 20, 7, 3)).eval()
    x = torch.rand(5, 4, 12) * 1.5
    model = TorchModel(BatchFirst(net))
    model.register_hooks()
    metric = SynapticOperations()
    xb = x.transpose(0, 1).contiguous()
    with torch.no_grad():
        preds = model(xb)
    theirs = metric(model, preds, (xb, None))
    report = estimate(net, x)
    assert report.totals["synops"] > 0
    assert report.totals["synops"] == pytest.approx(theirs["Effective_ACs"], rel=1e-12)
    assert report.totals["macs_effective"] == pytest.approx(theirs["Effective_MACs"], rel=1e-12)
    assert report.totals["macs_dense"] == pytest.approx(theirs["Dense"], rel=1e-12)
