"""bench/freed_pages.py: the VM's page-reporting settings are set for a bench run and always put back
(a bench that left them changed would alter every later measurement on the machine)."""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "freed_pages.py"


@pytest.fixture()
def parameters(tmp_path) -> Path:
    """Stands in for /sys/module/page_reporting/parameters."""
    folder = tmp_path / "parameters"
    folder.mkdir()
    return folder


@pytest.fixture()
def freed_pages(parameters, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_freed_pages", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "PARAMETERS", parameters)
    return module


def settings(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text().strip() for p in sorted(folder.iterdir())}


def test_sets_both_settings_inside_and_restores_them_after(freed_pages, parameters):
    (parameters / "min_free_ms").write_text("0\n")
    (parameters / "max_waiting_mib").write_text("1024\n")
    memory_mib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
    with freed_pages.freed_pages_held(60000):
        assert settings(parameters) == {"max_waiting_mib": str(memory_mib), "min_free_ms": "60000"}
    assert settings(parameters) == {"max_waiting_mib": "1024", "min_free_ms": "0"}


def test_restores_them_when_the_bench_fails_inside(freed_pages, parameters):
    (parameters / "min_free_ms").write_text("0\n")
    (parameters / "max_waiting_mib").write_text("1024\n")
    with pytest.raises(KeyboardInterrupt):
        with freed_pages.freed_pages_held(5):
            raise KeyboardInterrupt
    assert settings(parameters) == {"max_waiting_mib": "1024", "min_free_ms": "0"}


def test_a_machine_without_the_setting_stops_the_bench_and_changes_nothing(freed_pages, parameters):
    (parameters / "min_free_ms").write_text("0\n")  # the first one exists, the second does not
    with pytest.raises(SystemExit, match="max_waiting_mib"):
        with freed_pages.freed_pages_held(5):
            pytest.fail("the bench ran without the setting")
    assert settings(parameters) == {"min_free_ms": "0"}


def test_without_the_option_nothing_is_written(freed_pages, parameters, capsys):
    with freed_pages.freed_pages_held(None):
        pass
    assert settings(parameters) == {}
    assert capsys.readouterr().err == ""  # no such kernel: nothing to say


def test_a_terminated_bench_restores_them(parameters):
    """`kill` (SIGTERM) of a bench inside the block: Python's default would end it without the restore."""
    (parameters / "min_free_ms").write_text("0\n")
    (parameters / "max_waiting_mib").write_text("1024\n")
    script = f"""
import importlib.util, os, signal, sys, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("bench_freed_pages", {str(BENCH)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.PARAMETERS = Path({str(parameters)!r})
with module.freed_pages_held(60000):
    print("held", flush=True)
    time.sleep(30)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    assert (parameters / "min_free_ms").read_text() == "60000"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    assert settings(parameters) == {"max_waiting_mib": "1024", "min_free_ms": "0"}


def test_without_the_option_a_machine_that_reports_at_once_is_named(freed_pages, parameters, capsys):
    (parameters / "min_free_ms").write_text("0\n")
    with freed_pages.freed_pages_held(None):
        pass
    assert "--hold-freed-pages" in capsys.readouterr().err
    assert settings(parameters) == {"min_free_ms": "0"}


def test_without_the_option_a_machine_that_holds_freed_pages_is_not(freed_pages, parameters, capsys):
    (parameters / "min_free_ms").write_text("60000\n")
    with freed_pages.freed_pages_held(None):
        pass
    assert capsys.readouterr().err == ""
