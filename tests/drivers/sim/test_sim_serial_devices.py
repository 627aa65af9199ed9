"""The simulated arm takes --gripper and --heartbeat as a real arm does: the devices
are built (not connected) around it, so a bench can rehearse them and the fault
campaign can unplug them."""

from __future__ import annotations

from pathlib import Path

import pytest

from grasprt.bundle import load_bundle
from grasprt.config import RunConfig
from grasprt.drivers.arm_with_gripper import ArmWithGripper
from grasprt.drivers.heartbeat import SerialHeartbeat
from grasprt.drivers.registry import check_drivers
from grasprt.drivers.robotiq import RobotiqGripper
from grasprt.drivers.sim.kind import sim_drivers
from grasprt.drivers.sim.robot import SimSawyer
from grasprt.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
BUNDLE = REPO / "models" / "placeholder"


def test_without_devices_the_sim_is_alone() -> None:
    d = sim_drivers(RunConfig(bundle=str(BUNDLE)), load_bundle(BUNDLE))
    assert isinstance(d.robot, SimSawyer) and d.heartbeat is None


def test_gripper_and_heartbeat_wrap_the_simulated_arm() -> None:
    cfg = RunConfig(bundle=str(BUNDLE), gripper="robotiq:/dev/ttyNONE0", heartbeat="/dev/ttyNONE1")
    d = sim_drivers(cfg, load_bundle(BUNDLE))
    assert isinstance(d.robot, ArmWithGripper)
    assert isinstance(d.robot.robot, SimSawyer) and isinstance(d.robot.gripper, RobotiqGripper)
    assert isinstance(d.heartbeat, SerialHeartbeat) and d.heartbeat.port == "/dev/ttyNONE1"
    # Built, not connected: nothing was opened, so a bad port is found at connect.
    assert d.heartbeat.fault() is None


@pytest.mark.parametrize("device", [{"gripper": "robotiq:/dev/ttyNONE0"}, {"heartbeat": "/dev/x"}])
def test_serial_devices_are_refused_on_the_simulators_clock(device: dict) -> None:
    cfg = RunConfig(bundle=str(BUNDLE), clock="sim", **device)
    with pytest.raises(ConfigError, match="--clock wall"):
        check_drivers(cfg, load_bundle(BUNDLE))
