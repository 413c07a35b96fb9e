"""Network name -> builder. Builders take keyword arguments and return an ``nn.Module``."""
from mednext_fw.registry import Registry

NETWORKS = Registry(
    "network",
    "mednext_fw.networks",
    builtin_modules=("mednext_fw.network_architectures.mednext",),
)


def build_network(name: str, **kwargs):
    return NETWORKS.get(name)(**kwargs)
