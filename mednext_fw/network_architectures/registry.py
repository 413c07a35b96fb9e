"""Network name -> builder. Builders take keyword arguments and return an ``nn.Module``."""
from mednext_fw.registry import Registry

NETWORKS = Registry(
    "network",
    "mednext_fw.networks",
    builtin_modules=("mednext_fw.network_architectures.mednext",),
)


def build_network(name: str, **kwargs):
    return NETWORKS.get(name)(**kwargs)


def input_channels(net) -> int | None:
    """Channels ``net`` takes: its ``in_channels`` when it states one (backend wrappers do), else its
    first convolution's. A cascade stage takes the image plus previous-stage channels, so callers
    that make a dummy input ask the network, not the dataset."""
    from torch import nn

    stated = getattr(net, "in_channels", None)
    if isinstance(stated, int):
        return stated
    return next((m.in_channels for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))), None)
