"""One ``UserError`` family: one line and exit 1 for user mistakes, a traceback for everything else."""
import importlib
import inspect
import pkgutil

import pytest

import mednext_fw
from mednext_fw.cli.common import add_tta_flag, run_command
from mednext_fw.errors import UsageError, UserError


def test_user_error_is_one_line_and_exit_1(capsys):
    def body():
        raise UsageError("-np must be >= 1, got 0")

    assert run_command("mednext_x", body) == 1
    assert capsys.readouterr().err == "mednext_x: error: -np must be >= 1, got 0\n"


def test_a_bug_keeps_its_traceback():
    def body():
        raise ValueError("a real bug")  # not a UserError: must not pass for a user mistake

    with pytest.raises(ValueError, match="a real bug"):
        run_command("mednext_x", body)


def test_every_error_class_of_the_package_is_a_user_error():
    """Each exception class we define signals a user mistake, so each derives from UserError
    (signals such as StopRequested are KeyboardInterrupts, not errors)."""
    found = []
    for mod in pkgutil.walk_packages(mednext_fw.__path__, "mednext_fw."):
        if mod.name.startswith("mednext_fw.cli"):
            continue
        module = importlib.import_module(mod.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == module.__name__:
                found.append(obj)
                assert issubclass(obj, UserError), f"{module.__name__}.{name} does not derive from UserError"
    assert len(found) >= 20


def test_deprecated_tta_alias_warns(capsys):
    import argparse

    p = argparse.ArgumentParser(prog="mednext_x")
    add_tta_flag(p, old_names=("--no-val-tta",))
    assert p.parse_args([]).disable_tta is False
    assert p.parse_args(["--disable-tta"]).disable_tta is True
    assert p.parse_args(["--no-val-tta"]).disable_tta is True
    assert "--no-val-tta is deprecated, use --disable-tta" in capsys.readouterr().err


def test_every_command_reports_through_run_command():
    """No command catches builtin errors itself (a bug would pass for a user mistake): each main()
    hands its body to run_command, which reports UserError in one line and lets the rest through."""
    import mednext_fw.cli as cli

    commands = []
    for mod in pkgutil.iter_modules(cli.__path__, "mednext_fw.cli."):
        module = importlib.import_module(mod.name)
        if hasattr(module, "main"):
            commands.append(mod.name)
            source = inspect.getsource(module)
            assert "run_command(" in source, f"{mod.name}.main does not go through run_command"
            assert "except (ValueError" not in source and "USER_ERRORS" not in source, mod.name
    assert len(commands) >= 11
