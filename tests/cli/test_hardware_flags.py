"""--threads and -np/--num-workers mean the same in every command, and --threads is applied."""
import pytest
import torch

from mednext_fw.cli import evaluate, plan_and_preprocess, predict, train


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("module,argv", [
    (train, ["3d_fullres", "0", "-d", "999"]),
    (predict, ["-i", "in", "-o", "out", "-d", "999"]),
    (plan_and_preprocess, ["-d", "999"]),
    (evaluate, ["-ref", "nowhere", "-pred", "nowhere", "-l", "1"]),
])
def test_threads_flag_is_applied_before_the_work(module, argv, roots, restore_threads, capsys):
    for n in (3, 1):
        assert module.main(argv + ["--threads", str(n)]) == 1  # the work itself fails: nothing to do
        assert torch.get_num_threads() == n
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 2


@pytest.mark.parametrize("module,argv,workers_rule", [
    (train, ["3d_fullres", "0", "-d", "999"], "-np/--num-workers must be >= 0"),
    (predict, ["-i", "in", "-o", "out"], "-np/--num-workers must be >= 0"),
    (plan_and_preprocess, ["-d", "999"], "-np must be >= 1"),  # preprocessing needs at least one process
])
def test_bad_counts_are_one_line_errors(module, argv, workers_rule, roots, capsys):
    assert module.main(argv + ["--threads", "0"]) == 1
    assert "--threads must be >= 1" in capsys.readouterr().err
    assert module.main(argv + ["--num-workers", "-1"]) == 1
    assert workers_rule in capsys.readouterr().err


def test_time_budget_flag_is_checked(roots, capsys):
    assert train.main(["3d_fullres", "0", "-d", "999", "--time-budget", "ten minutes"]) == 1
    assert "cannot read the duration 'ten minutes'" in capsys.readouterr().err
