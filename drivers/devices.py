"""`grasprt devices`: what cameras and serial ports this machine can see.

Three sections, each listed independently so a missing package or an odd device in
one never hides the others: RealSense cameras (librealsense), V4L2 cameras (sysfs) and
serial ports (pyserial). Each entry carries the ``--camera`` spec that would open it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, TypedDict

import click

from grasprt.drivers.realsense import device_info, import_pyrealsense2
from grasprt.errors import DriverError

SERIAL_INSTALL_HINT = "pyserial is not installed: pip install 'grasprt[serial]'"


class Section(TypedDict):
    available: bool  # False: the section could not be listed (see note)
    note: str | None
    devices: list[dict[str, Any]]


def _section(devices: list[dict[str, Any]] | None = None, note: str | None = None) -> Section:
    return {"available": note is None, "note": note, "devices": devices or []}


def realsense_devices(context: Any | None = None) -> Section:
    """Connected RealSense devices: name, serial, firmware, USB type."""
    try:
        rs = import_pyrealsense2()
    except DriverError as e:
        return _section(note=str(e))
    devices = []
    try:
        for device in (context or rs.context()).query_devices():
            entry: dict[str, Any] = device_info(rs, device)
            if "serial" in entry:
                entry["spec"] = f"realsense:{entry['serial']}"
            devices.append(entry)
    except RuntimeError as e:
        return _section(devices, note=f"librealsense cannot list devices: {e}")
    return _section(devices)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def v4l2_devices(
    sys_root: Path = Path("/sys/class/video4linux"), dev_root: Path = Path("/dev")
) -> Section:
    """/dev/video* nodes with the kernel's name for each and its stable by-id links.

    A UVC camera makes two nodes; the one with ``index`` 0 carries the images.
    """
    if not sys_root.is_dir():
        return _section()
    by_id: dict[str, list[str]] = {}
    links = dev_root / "v4l" / "by-id"
    if links.is_dir():
        for link in sorted(links.iterdir()):
            target = os.path.basename(os.path.realpath(link))
            by_id.setdefault(target, []).append(str(link))
    devices = []
    nodes = [p for p in sys_root.iterdir() if re.fullmatch(r"video\d+", p.name)]
    for node in sorted(nodes, key=lambda p: int(p.name[5:])):
        device = dev_root / node.name
        index = _read(node / "index")
        devices.append(
            {
                "device": str(device),
                "name": _read(node / "name") or "",
                "index": int(index) if index and index.isdigit() else None,
                "present": device.exists(),
                "by_id": by_id.get(node.name, []),
                "spec": f"opencv:{device}",
            }
        )
    return _section(devices)


def serial_ports() -> Section:
    """Serial ports pyserial finds (USB adapters, on-board UARTs); ptys are not listed."""
    try:
        from serial.tools import list_ports
    except ImportError:
        return _section(note=SERIAL_INSTALL_HINT)
    devices = [
        {
            "device": port.device,
            "description": port.description,
            "hwid": port.hwid,
            "serial_number": port.serial_number,
        }
        for port in sorted(list_ports.comports(), key=lambda p: p.device)
    ]
    return _section(devices)


def list_devices() -> dict[str, Section]:
    return {"realsense": realsense_devices(), "v4l2": v4l2_devices(), "serial": serial_ports()}


def _describe(kind: str, entry: dict[str, Any]) -> str:
    if kind == "realsense":
        parts = [entry.get("name", "RealSense"), f"serial {entry.get('serial', '?')}"]
        if "firmware" in entry:
            parts.append(f"firmware {entry['firmware']}")
        if "usb_type" in entry:
            parts.append(f"USB {entry['usb_type']}")
        return "  ".join(parts) + f"  -> --camera {entry.get('spec', 'realsense')}"
    if kind == "v4l2":
        text = f"{entry['device']}  {entry['name']}"
        if entry["index"] is not None:
            text += f" (index {entry['index']})"
        if not entry["present"]:
            text += " [no /dev node]"
        text += f"  -> --camera {entry['spec']}"
        return "".join([text, *(f"\n      {link}" for link in entry["by_id"])])
    text = f"{entry['device']}  {entry['description']}  {entry['hwid']}"
    if entry["serial_number"]:
        text += f"  serial {entry['serial_number']}"
    return text


TITLES = {"realsense": "RealSense cameras", "v4l2": "V4L2 cameras", "serial": "Serial ports"}


def format_devices(report: dict[str, Section]) -> str:
    lines = []
    for kind, title in TITLES.items():
        section = report[kind]
        lines.append(f"{title}:")
        lines.extend(f"  {_describe(kind, entry)}" for entry in section["devices"])
        if section["note"]:
            lines.append(f"  {section['note']}")
        elif not section["devices"]:
            lines.append("  none found")
    return "\n".join(lines)


@click.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for machines.")
def devices_cmd(as_json: bool) -> None:
    """List connected RealSense cameras, V4L2 cameras and serial ports."""
    report = list_devices()
    click.echo(json.dumps(report, indent=2) if as_json else format_devices(report))
