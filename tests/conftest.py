import pytest
import torch


def param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture
def meta():
    """Build models on the meta device: shapes without allocating weights."""
    with torch.device("meta"):
        yield
