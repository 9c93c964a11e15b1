"""Code from NNI's guides that must run on nascli with only its imports changed."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.utils.data import TensorDataset

from nascli.nas import LayerChoice, apply_fixed_architecture
from tests.oneshot_models import accuracy


def test_seed_custom_darts_trainer_example_runs_with_imports_changed() -> None:
    """The NNI guide's simplified custom DARTS trainer, imports changed to nascli's."""
    import torch.nn.functional as F

    from nascli.nas.oneshot import BaseOneShotTrainer, replace_layer_choice

    class DartsLayerChoice(nn.Module):
        def __init__(self, layer_choice):
            super(DartsLayerChoice, self).__init__()
            self.name = layer_choice.key
            self.op_choices = nn.ModuleDict(layer_choice.named_children())
            self.alpha = nn.Parameter(torch.randn(len(self.op_choices)) * 1e-3)

        def forward(self, *args, **kwargs):
            op_results = torch.stack([op(*args, **kwargs) for op in self.op_choices.values()])
            alpha_shape = [-1] + [1] * (len(op_results.size()) - 1)
            return torch.sum(op_results * F.softmax(self.alpha, -1).view(*alpha_shape), 0)

        def parameters(self):
            for _, p in self.named_parameters():
                yield p

        def named_parameters(self):
            for name, p in super(DartsLayerChoice, self).named_parameters():
                if name == "alpha":
                    continue
                yield name, p

        def export(self):
            return torch.argmax(self.alpha).item()

    class CustomDartsTrainer(BaseOneShotTrainer):
        def __init__(self, model, loss, metrics, optimizer, dataset):
            self.model = model
            self.loss = loss
            self.metrics = metrics
            self.num_epochs = 2
            self.nas_modules = []
            replace_layer_choice(self.model, DartsLayerChoice, self.nas_modules)
            loader = torch.utils.data.DataLoader(dataset, batch_size=16)
            self.train_loader, self.valid_loader = loader, loader
            self.model_optim = optimizer
            self.ctrl_optim = torch.optim.Adam([m.alpha for _, m in self.nas_modules], 3e-4)

        def train_architecture(self, x, y):
            self.ctrl_optim.zero_grad()
            self.loss(self.model(x), y).backward()
            self.ctrl_optim.step()

        def train_model_weight(self, x, y):
            self.model_optim.zero_grad()
            self.loss(self.model(x), y).backward()
            self.model_optim.step()

        def fit(self):
            for _ in range(self.num_epochs):
                for (trn_x, trn_y), (val_x, val_y) in zip(self.train_loader, self.valid_loader):
                    self.train_architecture(val_x, val_y)
                    self.train_model_weight(trn_x, trn_y)

        @torch.no_grad()
        def export(self):
            result = dict()
            for name, module in self.nas_modules:
                if name not in result:
                    result[name] = module.export()
            return result

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.choice = LayerChoice(OrderedDict(a=nn.Linear(4, 2), b=nn.Linear(4, 2)), key="c")

        def forward(self, x):
            return self.choice(x)

    model = Net()
    data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    trainer = CustomDartsTrainer(model, nn.CrossEntropyLoss(), accuracy,
                                 torch.optim.SGD(model.parameters(), 0.1), data)  # fmt: skip
    trainer.fit()
    arch = trainer.export()
    assert set(arch) == {"c"} and arch["c"] in (0, 1)
    fresh = Net()
    apply_fixed_architecture(fresh, arch)
    assert fresh(torch.randn(2, 4)).shape == (2, 2)
