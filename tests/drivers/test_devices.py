"""`grasprt devices`: runs on a bare machine, and each section survives on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grasprt.drivers.devices import (
    SERIAL_INSTALL_HINT,
    devices_cmd,
    format_devices,
    list_devices,
    v4l2_devices,
)
from grasprt.drivers.realsense import INSTALL_HINT

SECTIONS = {"realsense", "v4l2", "serial"}


def test_json_has_the_three_sections() -> None:
    result = CliRunner().invoke(devices_cmd, ["--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == SECTIONS
    for section in report.values():
        assert set(section) == {"available", "note", "devices"}
        assert isinstance(section["devices"], list)
        assert section["available"] == (section["note"] is None)


def test_text_lists_each_section_and_says_none_found() -> None:
    result = CliRunner().invoke(devices_cmd, [])
    assert result.exit_code == 0, result.output
    report = list_devices()
    for title, key in (
        ("RealSense cameras:", "realsense"),
        ("V4L2 cameras:", "v4l2"),
        ("Serial ports:", "serial"),
    ):
        assert title in result.output
        if not report[key]["devices"] and report[key]["available"]:
            assert f"{title}\n  none found" in result.output


def test_serial_ports_match_pyserial() -> None:
    from serial.tools import list_ports

    listed = [d["device"] for d in list_devices()["serial"]["devices"]]
    assert listed == sorted(p.device for p in list_ports.comports())


def test_missing_pyrealsense2_is_a_note_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    result = CliRunner().invoke(devices_cmd, ["--json"])
    assert result.exit_code == 0, result.output
    section = json.loads(result.output)["realsense"]
    assert section == {"available": False, "note": INSTALL_HINT, "devices": []}
    text = CliRunner().invoke(devices_cmd, [])
    assert f"RealSense cameras:\n  {INSTALL_HINT}" in text.output


def test_missing_pyserial_is_a_note_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "serial" or m.startswith("serial.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "serial", None)
    result = CliRunner().invoke(devices_cmd, ["--json"])
    assert result.exit_code == 0, result.output
    section = json.loads(result.output)["serial"]
    assert section == {"available": False, "note": SERIAL_INSTALL_HINT, "devices": []}


def fake_sysfs(root: Path, nodes: dict[str, tuple[str, int]]) -> Path:
    for node, (name, index) in nodes.items():
        (root / node).mkdir(parents=True)
        (root / node / "name").write_text(name + "\n")
        (root / node / "index").write_text(f"{index}\n")
    return root


def test_v4l2_nodes_named_ordered_and_linked(tmp_path: Path) -> None:
    sys_root = fake_sysfs(
        tmp_path / "sys",
        {
            "video10": ("USB Camera: Rear", 0),
            "video2": ("HD Webcam", 0),
            "video3": ("HD Webcam", 1),
        },
    )
    dev_root = tmp_path / "dev"
    (dev_root / "v4l" / "by-id").mkdir(parents=True)
    for node in ("video2", "video3"):
        (dev_root / node).touch()
    os.symlink(dev_root / "video2", dev_root / "v4l" / "by-id" / "usb-HD_Webcam-video-index0")
    (sys_root / "vbi0").mkdir()  # not a video node: left out

    section = v4l2_devices(sys_root, dev_root)
    devices = section["devices"]
    assert [d["device"] for d in devices] == [
        str(dev_root / n) for n in ("video2", "video3", "video10")
    ]
    assert [d["name"] for d in devices] == ["HD Webcam", "HD Webcam", "USB Camera: Rear"]
    assert [d["index"] for d in devices] == [0, 1, 0]
    assert [d["present"] for d in devices] == [True, True, False]
    assert devices[0]["by_id"] == [str(dev_root / "v4l" / "by-id" / "usb-HD_Webcam-video-index0")]
    assert devices[0]["spec"] == f"opencv:{dev_root / 'video2'}"
    empty = v4l2_devices(tmp_path / "absent", tmp_path)
    text = format_devices({"realsense": empty, "v4l2": section, "serial": empty})
    assert "HD Webcam (index 0)" in text and "[no /dev node]" in text
    assert "usb-HD_Webcam-video-index0" in text
    assert text.count("none found") == 2


def test_no_video4linux_means_none_found(tmp_path: Path) -> None:
    section = v4l2_devices(tmp_path / "absent", tmp_path)
    assert section == {"available": True, "note": None, "devices": []}


BLOCK_PACKAGES = """
import sys
sys.modules["pyrealsense2"] = None  # as if not installed
sys.modules["serial"] = None
from grasprt.cli import main
main(["devices", *sys.argv[1:]])
"""


def test_grasprt_devices_without_optional_packages_has_no_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_PACKAGES, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["realsense"]["note"] == INSTALL_HINT
    assert report["serial"]["note"] == SERIAL_INSTALL_HINT
    assert report["v4l2"]["available"]
