import pytest
import torch

from mednext_fw.inference.model_folder import ModelFolder, ModelFolderError, load_networks, resolve_model_folder
from mednext_fw.network_architectures.checkpoint import CheckpointError, load_checkpoint, network_from_checkpoint
from tests.inference.model_factory import make_model_folder, tiny_network


def test_open_folds_and_networks(roots, shared_data):
    mf_path = make_model_folder(roots["results"], shared_data / "Dataset001_BrainMask", folds=(0, 2),
                                checkpoints=("final", "best"))
    mf = ModelFolder.open(mf_path)
    assert (mf.trainer_name, mf.config_name) == ("MedNeXtTrainer", "3d_fullres")
    assert mf.folds("final") == [0, 2] and mf.folds("latest") == []
    nets = load_networks(mf, None, "best")
    assert len(nets) == 2 and all(not n.deep_supervision and not n.training for n in nets)
    with pytest.raises(ModelFolderError, match="fold_1.*folds with checkpoint_final.pth: \\[0, 2\\]"):
        load_networks(mf, [1], "final")
    with pytest.raises(ModelFolderError, match="no fold holds checkpoint_latest"):
        load_networks(mf, None, "latest")


def test_ddp_prefix_is_stripped_and_mismatch_reported(tmp_path):
    net, kwargs = tiny_network(3)
    ckpt = {"network_builder": {"name": "mednext", "kwargs": kwargs},
            "network_state": {f"module.{k}": v for k, v in net.state_dict().items()}}
    rebuilt = network_from_checkpoint(ckpt)
    x = torch.randn(1, 1, 16, 16, 16)
    net.deep_supervision = False
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), net(x))
    ckpt["network_builder"]["kwargs"]["num_classes"] = 3
    with pytest.raises(CheckpointError, match="weights do not match"):
        network_from_checkpoint(ckpt)
    ckpt["network_builder"]["name"] = "no_such_net"
    with pytest.raises(CheckpointError, match="cannot rebuild network 'no_such_net'"):
        network_from_checkpoint(ckpt)
    bad = tmp_path / "checkpoint_final.pth"
    bad.write_bytes(b"\x00truncated")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    torch.save({"network_state": {}}, bad)
    assert load_checkpoint(bad) == {"network_state": {}}  # a trainer's resume needs no builder
    with pytest.raises(CheckpointError, match="missing \\['network_builder'\\]"):
        load_checkpoint(bad, require=("network_builder", "network_state"))
    with pytest.raises(CheckpointError, match="missing \\['network_builder'\\]"):
        network_from_checkpoint({"network_state": {}})


def test_resolution_rules(roots, shared_data):
    ds = shared_data / "Dataset001_BrainMask"
    with pytest.raises(ModelFolderError, match="no trained model"):
        resolve_model_folder()
    only = make_model_folder(roots["results"], ds)
    assert resolve_model_folder() == only
    assert resolve_model_folder("1", "3d_fullres") == only
    make_model_folder(roots["results"], ds, trainer="OtherTrainer")
    assert resolve_model_folder() == only  # the default trainer breaks the tie
    make_model_folder(roots["results"], ds, config_name="2d")
    with pytest.raises(ModelFolderError, match="several trained models"):
        resolve_model_folder()
    assert resolve_model_folder(trainer="OtherTrainer").name == "OtherTrainer__3d_fullres"
    with pytest.raises(ModelFolderError, match="matching config=3d_lowres"):
        resolve_model_folder(config="3d_lowres")
    with pytest.raises(ModelFolderError, match="model folder is named"):
        ModelFolder.open(roots["results"])


def test_default_folds_find_fold_all(roots, shared_data):
    # What mednext_demo leaves: one model trained on every case, in fold_all.
    mf_path = make_model_folder(roots["results"], shared_data / "Dataset001_BrainMask", folds=("all",))
    mf = ModelFolder.open(mf_path)
    assert mf.folds() == [] and mf.default_folds() == ["all"]
    assert len(load_networks(mf, None)) == 1
    make_model_folder(roots["results"], shared_data / "Dataset001_BrainMask", folds=(0, 1))
    assert ModelFolder.open(mf_path).default_folds() == [0, 1]  # cross-validation folds first, as nnU-Net
