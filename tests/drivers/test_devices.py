"""`grasprt devices`: runs on a bare machine, and each section survives on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from grasprt.drivers.devices import (
    SERIAL_INSTALL_HINT,
    devices_cmd,
    format_devices,
    list_devices,
    serial_ports,
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


def usb_port(device: str, vid: int, pid: int, serial_number: str | None) -> Any:
    """A port as pyserial's own ListPortInfo describes a USB adapter."""
    from serial.tools.list_ports_common import ListPortInfo

    port = ListPortInfo(device, skip_link_detection=True)
    port.vid, port.pid, port.serial_number = vid, pid, serial_number
    port.location, port.product = "1-2", "FT232R USB UART"
    port.apply_usb_info()
    return port


def test_serial_ports_sorted_and_described(monkeypatch: pytest.MonkeyPatch) -> None:
    from serial.tools import list_ports
    from serial.tools.list_ports_common import ListPortInfo

    # pyserial lists by glob pattern (ttyS*, then ttyUSB*, then ttyACM*), not by name.
    ports = [
        ListPortInfo("/dev/ttyS0", skip_link_detection=True),
        usb_port("/dev/ttyUSB1", 0x0403, 0x6001, "A50285BI"),
        usb_port("/dev/ttyACM0", 0x2341, 0x0043, None),
    ]
    monkeypatch.setattr(list_ports, "comports", lambda: list(ports))
    section = serial_ports()
    assert section["available"] and section["note"] is None
    devices = section["devices"]
    assert [d["device"] for d in devices] == ["/dev/ttyACM0", "/dev/ttyS0", "/dev/ttyUSB1"]
    usb = devices[2]
    assert usb == {
        "device": "/dev/ttyUSB1",
        "description": "FT232R USB UART",
        "hwid": "USB VID:PID=0403:6001 SER=A50285BI LOCATION=1-2",
        "serial_number": "A50285BI",
    }
    json.dumps(section)  # what --json prints: plain values only
    empty = {"available": True, "note": None, "devices": []}
    lines = format_devices({"realsense": empty, "v4l2": empty, "serial": section})
    serial_lines = lines.split("Serial ports:\n", 1)[1].splitlines()
    assert serial_lines[0] == "  /dev/ttyACM0  FT232R USB UART  USB VID:PID=2341:0043 LOCATION=1-2"
    assert serial_lines[1] == "  /dev/ttyS0  n/a  n/a"
    assert serial_lines[2].endswith("LOCATION=1-2  serial A50285BI")


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
