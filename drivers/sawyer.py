"""A Rethink Sawyer through the Intera SDK (ROS 1): joint position commands at loop rate.

``rospy`` and ``intera_interface`` are imported in :meth:`SawyerRobot.connect`, never at
module import, so the rest of grasprt (and its tests) runs without ROS. What this
driver could and could not be checked against is listed in docs/sawyer.md.

Intera's position mode is "raw" (no collision avoidance on the robot side), so the
loop's limiter is the last line of defence; two settings made at connect keep a
failure safe: a low joint-position speed ratio, and the controller's command timeout,
after which the robot holds position on its own if grasprt stops publishing.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from grasprt.bundle import Bundle
from grasprt.config import RunConfig, check_number
from grasprt.drivers.gripper_worker import GripperWorker
from grasprt.drivers.ros_node import ensure_node, import_rospy
from grasprt.errors import DriverError
from grasprt.profiles import SAWYER, RobotProfile, get_profile
from grasprt.types import Clock, Drivers, JointCommand, RobotState

log = logging.getLogger(__name__)

INTERA_MISSING = (
    "intera_interface not found: source your ROS workspace "
    "(source ~/ros_ws/devel/setup.bash) and install intera_sdk"
)
# The robot publishes its joint states at 100 Hz; connect waits this long for one.
JOINT_STATES_WAIT_S = 2.0
# intera_core_msgs/AssemblyState.estop_button
ESTOP_BUTTON_PRESSED = 1
# intera_interface.Gripper.MAX_POSITION, metres between the fingers when open: the
# electric gripper's travel, which the profile holds (one number, one place).
INTERA_GRIPPER_OPEN_M = SAWYER.gripper.max_opening


@dataclass(frozen=True)
class SawyerSettings:
    """The `[sawyer]` section: how grasprt sets the arm up at connect."""

    # Intera's joint-position speed ratio: a low one keeps a failure slow.
    speed_ratio: float = 0.2
    # The robot holds position on its own this long after grasprt stops publishing:
    # how long the arm keeps moving after grasprt dies.
    command_timeout_s: float = 0.25
    limb: str = "right"

    def __post_init__(self) -> None:
        check_number("sawyer", "speed_ratio", self.speed_ratio, low=0, high=1, low_open=True)
        check_number(
            "sawyer", "command_timeout_s", self.command_timeout_s, low=0, high=1, low_open=True
        )


@dataclass(frozen=True)
class InteraSdk:
    """The two ROS modules the driver uses; injectable so tests can supply stand-ins."""

    rospy: Any
    intera_interface: Any


def import_intera() -> InteraSdk:
    """Debian's (or the workspace's) rospy and the real intera_interface."""
    rospy = import_rospy()
    try:
        import intera_interface
    except ImportError as err:
        raise DriverError(f"{INTERA_MISSING} ({err})") from None
    return InteraSdk(rospy=rospy, intera_interface=intera_interface)


def fault_from_assembly_state(state: Any) -> str | None:
    """The reason an ``AssemblyState`` forbids commanding the arm, or None."""
    if state is None:
        return "no robot state received from /robot/state"
    if getattr(state, "estop_button", 0) == ESTOP_BUTTON_PRESSED:
        return "Sawyer e-stop button pressed"
    # An error stops the robot too: name the error, the stop is its consequence.
    if getattr(state, "error", False):
        return "Sawyer in error state (see the robot's diagnostics)"
    if getattr(state, "stopped", False):
        return f"Sawyer stopped (e-stop source {getattr(state, 'estop_source', '?')})"
    if not getattr(state, "enabled", False):
        return "Sawyer not enabled"
    return None


class SawyerRobot:
    """Implements :class:`grasprt.types.Robot` on the Intera SDK."""

    name = "sawyer"

    def __init__(
        self,
        profile: RobotProfile = SAWYER,
        clock: Clock | None = None,
        speed_ratio: float = 0.2,
        command_timeout_s: float = 0.25,
        limb_name: str = "right",
        intera: InteraSdk | None = None,
        use_gripper: bool = True,
        disable_on_disconnect: bool = False,
        node_name: str = "grasprt",
        hold_lock_timeout_s: float = 0.05,
    ) -> None:
        # The same checks as `[sawyer]`'s: a robot made in Python is held to them too.
        SawyerSettings(speed_ratio, command_timeout_s, limb_name)
        if clock is None:
            from grasprt.clock import MonotonicClock

            clock = MonotonicClock()
        self.profile = profile
        self.joint_names = profile.joint_names
        self.clock = clock
        self.speed_ratio = speed_ratio
        self.command_timeout_s = command_timeout_s
        self.limb_name = limb_name
        self.use_gripper = use_gripper
        self.disable_on_disconnect = disable_on_disconnect
        self.node_name = node_name
        self.hold_lock_timeout_s = hold_lock_timeout_s
        self._sdk = intera
        self._lock = threading.Lock()
        self._enabler: Any = None
        self._limb: Any = None
        self._gripper: Any = None
        self._gripper_worker: Any = None
        self._gripper_closed: bool | None = None
        # Real SDK only: when /robot/joint_states last arrived, and the master's health.
        self._joint_clock: Any = None
        self._master: Any = None

    # -- start-up -----------------------------------------------------------------

    def connect(self) -> None:
        injected = self._sdk is not None
        sdk = self._sdk or import_intera()
        self._sdk = sdk
        ii = sdk.intera_interface
        if injected:
            self._init_injected_node(sdk)
        else:
            # Asks the master first: rospy's init_node would wait forever for none.
            ensure_node(self.node_name)
        try:
            self._enabler = self._enable(ii)
            self._limb = self._open_limb(ii)
            if self.use_gripper:
                self._gripper = self._connect_gripper(ii)
                self._gripper_worker = GripperWorker(self._gripper, "intera-gripper")
            if not injected:
                self._watch(sdk.rospy)
        except BaseException:
            # Half a connection must not command anything: undo what was set up.
            self._release()
            raise
        log.info(
            "Sawyer connected: speed ratio %.2f, command timeout %.2f s, gripper %s",
            self.speed_ratio,
            self.command_timeout_s,
            "intera" if self._gripper is not None else "external",
        )

    def _enable(self, ii: Any) -> Any:
        try:
            enabler = ii.RobotEnable(versioned=True)
        except SystemExit:
            raise DriverError(
                "Sawyer software version does not match the installed intera_sdk; update one "
                "of them (see the robot's software_version parameter)"
            ) from None
        except Exception as err:
            raise DriverError(
                f"no Sawyer state on /robot/state ({err}); check ROS_MASTER_URI points at "
                "the robot and ROS_IP is this PC's address"
            ) from None
        state = enabler.state()
        if getattr(state, "estop_button", 0) == ESTOP_BUTTON_PRESSED:
            raise DriverError("Sawyer e-stop is pressed: release it, then start grasprt again")
        try:
            enabler.enable()
        except Exception as err:
            raise DriverError(f"could not enable the Sawyer: {err}; reset it and retry") from None
        if not getattr(enabler.state(), "enabled", False):
            raise DriverError("Sawyer did not report enabled after enable(); reset it and retry")
        return enabler

    def _open_limb(self, ii: Any) -> Any:
        limbs = self._limb_names(ii)
        if limbs is not None and self.limb_name not in limbs:
            # The real Limb() of a limb the robot lacks logs and returns half built.
            raise DriverError(
                f"the Sawyer has no limb {self.limb_name!r} (it has {', '.join(limbs) or 'none'})"
            )
        try:
            limb = ii.Limb(self.limb_name)
            names = tuple(limb.joint_names())
        except Exception as err:
            raise DriverError(f"Sawyer limb {self.limb_name!r} not available: {err}") from None
        missing = [n for n in self.joint_names if n not in names]
        if missing:
            raise DriverError(
                f"Sawyer limb {self.limb_name!r} has no joints {', '.join(missing)} "
                f"(it reports {', '.join(names) or 'none'}); check the robot profile"
            )
        limb.set_joint_position_speed(self.speed_ratio)
        limb.set_command_timeout(self.command_timeout_s)
        return limb

    @staticmethod
    def _limb_names(ii: Any) -> list[str] | None:
        """The robot's limbs from its parameters (None where the SDK cannot say)."""
        params = getattr(ii, "RobotParams", None)
        if params is None:
            return None
        try:
            return list(params().get_limb_names())
        except Exception:
            return None

    def _watch(self, rospy: Any) -> None:
        """What the SDK does not watch: the joint states' arrival, the master's life."""
        from sensor_msgs.msg import JointState

        from grasprt.drivers.ros_node import master_uri
        from grasprt.drivers.ros_watch import MasterWatch, TopicClock

        self._joint_clock = TopicClock(rospy, "/robot/joint_states", JointState, self.clock)
        if not self._joint_clock.wait_first(JOINT_STATES_WAIT_S):
            raise DriverError(
                f"no /robot/joint_states within {JOINT_STATES_WAIT_S:g} s of connecting"
            )
        self._master = MasterWatch(master_uri())
        self._master.start()

    def _init_injected_node(self, sdk: InteraSdk) -> None:
        try:
            sdk.rospy.init_node(self.node_name, anonymous=True, disable_signals=True)
        except Exception as err:
            # A second connect in one process: rospy allows one init_node per process.
            if "already" not in str(err):
                raise DriverError(f"rospy.init_node failed: {err}") from None

    def _connect_gripper(self, ii: Any) -> Any:
        ee_name = f"{self.limb_name}_gripper"
        try:
            gripper = ii.Gripper(ee_name, calibrate=True)
            if not gripper.is_calibrated():
                gripper.calibrate()
        except Exception as err:
            raise DriverError(
                f"no Intera gripper {ee_name!r} ({err}); fit one, or run with an external "
                "gripper (ArmWithGripper) and use_gripper=False"
            ) from None
        if not gripper.is_calibrated():
            raise DriverError(
                f"Intera gripper {ee_name!r} failed to calibrate; clear the fingers and retry"
            )
        return gripper

    def disconnect(self) -> None:
        if self._limb is None:
            return
        self.hold()
        # Left enabled by default: the arm keeps holding its last position (and any
        # object) under its own controller; disabling drops it onto its brakes.
        if self.disable_on_disconnect and self._enabler is not None:
            try:
                self._enabler.disable()
            except Exception:
                log.exception("Sawyer disable failed")
        self._release()

    def _release(self) -> None:
        """Forget the connection: threads stopped, subscriptions closed, no limb."""
        if self._gripper_worker is not None:
            self._gripper_worker.stop()
        if self._master is not None:
            self._master.stop()
        if self._joint_clock is not None:
            self._joint_clock.close()
        self._limb = self._gripper = self._gripper_worker = None
        self._master = self._joint_clock = None
        self._gripper_closed = None

    # -- the loop ---------------------------------------------------------------------

    def read_state(self) -> RobotState:
        limb = self._require_limb()
        angles = limb.joint_angles()
        q = np.array([angles.get(n, math.nan) for n in self.joint_names], dtype=np.float64)
        state = self._enabler.state()
        fault = fault_from_assembly_state(state)
        if self._master is not None and self._master.lost:
            fault = self._master.lost
        gripper_pos = 0.0
        object_held: bool | None = None
        if self._gripper is not None:
            metres = float(self._gripper.get_position())
            gripper_pos = float(np.clip(1.0 - metres / INTERA_GRIPPER_OPEN_M, 0.0, 1.0))
            object_held = bool(self._gripper.is_gripping())
            if fault is None and self._gripper.has_error():
                fault = "Intera gripper reports an error"
            if fault is None and self._gripper_worker.error:
                fault = f"Intera gripper command failed: {self._gripper_worker.error}"
        return RobotState(
            q=q,
            gripper=gripper_pos,
            stamp=self._state_stamp(),
            enabled=bool(getattr(state, "enabled", False)),
            object_held=object_held,
            fault=fault,
        )

    def _state_stamp(self) -> float:
        # When the joint angles arrived, not when they were read: a silent
        # /robot/joint_states must age, so the loop's watchdog holds, then stops.
        clock = self._joint_clock
        if clock is None or clock.last is None:
            return self.clock.now()  # an injected SDK (tests) has no topic to watch
        return clock.last

    def command(self, cmd: JointCommand) -> None:
        limb = self._require_limb()
        q = np.asarray(cmd.q, dtype=np.float64)
        if q.shape != (len(self.joint_names),) or not np.all(np.isfinite(q)):
            raise ValueError(f"Sawyer command must be {len(self.joint_names)} finite angles")
        targets = {n: float(v) for n, v in zip(self.joint_names, q, strict=True)}
        with self._lock:
            limb.set_joint_positions(targets)
            if self._gripper is not None and cmd.gripper_closed != self._gripper_closed:
                # Off this thread: Intera's open/close block longer than a cycle.
                self._gripper_worker.request(cmd.gripper_closed)
                self._gripper_closed = cmd.gripper_closed

    def hold(self) -> None:
        """Command the measured angles. Never raises: if this fails, the controller's
        command timeout holds the arm anyway."""
        limb = self._limb
        if limb is None:
            return
        # Waiting for the lock orders the hold after a command in flight; if a command
        # is stuck inside the SDK, publish anyway (rospy publishers are thread-safe).
        locked = self._lock.acquire(timeout=self.hold_lock_timeout_s)
        try:
            angles = limb.joint_angles()
            targets = {n: float(angles[n]) for n in self.joint_names if n in angles}
            if len(targets) == len(self.joint_names) and all(
                math.isfinite(v) for v in targets.values()
            ):
                limb.set_joint_positions(targets)
            else:
                log.error("Sawyer hold: no complete joint state; relying on command timeout")
        except Exception:
            log.exception("Sawyer hold failed; relying on the controller's command timeout")
        finally:
            if locked:
                self._lock.release()

    def _require_limb(self) -> Any:
        if self._limb is None:
            raise DriverError("Sawyer not connected: call connect() first")
        return self._limb


def sawyer_drivers(cfg: RunConfig, bundle: Bundle) -> Drivers:
    """The Sawyer's drivers for a run (drivers/registry.py): the arm on Intera, its own
    gripper unless `--gripper` names another, the camera and heartbeat given."""
    from grasprt.clock import MonotonicClock
    from grasprt.drivers.episode_setup import EpisodeSetup
    from grasprt.drivers.hardware import hardware_drivers

    s = cfg.robot_settings or SawyerSettings()
    # Imported now, while the run is being checked: a PC without rospy or the SDK is
    # told so in one line before anything connects.
    import_intera()
    clock = MonotonicClock()
    robot = SawyerRobot(
        profile=get_profile(bundle.robot),
        clock=clock,
        speed_ratio=s.speed_ratio,
        command_timeout_s=s.command_timeout_s,
        limb_name=s.limb,
        use_gripper=not cfg.gripper,
    )
    drivers = hardware_drivers(cfg, robot, clock)
    # A twin resets its world for each episode; a real robot's operator places the sphere.
    drivers.setup_episode = EpisodeSetup(cfg.seed, drivers.setup_episode)
    return drivers
