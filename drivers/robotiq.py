"""A Robotiq 2F-85 / 2F-140 gripper on Modbus RTU (RS-485 through a USB adapter).

Register map (Robotiq 2F-85/2F-140 instruction manual, "Control" section). Each
16-bit register carries two bytes, the first byte in the high half.

Output (robot -> gripper), written with function 0x10 from 0x03E8:

=========  ====  ===========================================================
register   byte  content
=========  ====  ===========================================================
0x03E8     0     action request: bit0 rACT (activate), bit3 rGTO (go to the
                 requested position), bit4 rATR (automatic release), bit5 rARD
0x03E8     1     reserved (0)
0x03E9     2     reserved (0)
0x03E9     3     rPR, position request, 0x00 open ... 0xFF closed
0x03EA     4     rSP, speed, 0x00 slowest ... 0xFF fastest
0x03EA     5     rFR, force, 0x00 lowest ... 0xFF highest
=========  ====  ===========================================================

Input (gripper -> robot), read with function 0x04 from 0x07D0:

=========  ====  ===========================================================
0x07D0     0     status: bit0 gACT, bit3 gGTO, bits4-5 gSTA (0 reset,
                 1 activating, 3 activation complete), bits6-7 gOBJ (0 moving,
                 1 stopped on contact while opening, 2 stopped on contact while
                 closing, 3 at the requested position, no object)
0x07D0     1     reserved
0x07D1     2     fault: low nibble gFLT (0x05-0x07 priority, 0x08-0x09 minor,
                 0x0A-0x0F major); high nibble kFLT (controller-specific)
0x07D1     3     gPR, echo of the position request
0x07D2     4     gPO, measured position, 0x00 open ... 0xFF closed
0x07D2     5     gCU, finger current, about 10 mA a count
=========  ====  ===========================================================

Activation (rACT 0 -> 1) sweeps the fingers fully open and closed to calibrate, so the
driver only activates in ``connect()``, never on its own later: a gripper found
de-activated after a reconnect (power cut) is reported as a fault instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from grasprt.drivers.modbus_rtu import ModbusError, ModbusPortError, ModbusRtuMaster
from grasprt.errors import DriverError

log = logging.getLogger(__name__)

OUTPUT_REGISTERS = 0x03E8
INPUT_REGISTERS = 0x07D0

ACT = 0x01
GTO = 0x08

STA_RESET = 0
STA_ACTIVATING = 1
STA_ACTIVE = 3

OBJ_MOVING = 0
OBJ_CONTACT_OPENING = 1
OBJ_CONTACT_CLOSING = 2
OBJ_AT_TARGET = 3

FAULT_NAMES: dict[int, str] = {
    0x05: "action delayed: activation must complete first",
    0x07: "activation bit must be set first",
    0x08: "maximum operating temperature exceeded",
    0x09: "no communication for at least 1 s",
    0x0A: "under minimum operating voltage",
    0x0B: "automatic release in progress",
    0x0C: "internal fault",
    0x0D: "activation fault",
    0x0E: "overcurrent",
    0x0F: "automatic release completed",
}
MAJOR_FAULT = 0x0A


def encode_request(act: bool, go: bool, position: int, speed: int, force: int) -> list[int]:
    """The three output registers for one request (bytes 0-5 of the output map)."""
    for name, v in (("position", position), ("speed", speed), ("force", force)):
        if not 0 <= v <= 255:
            raise ValueError(f"Robotiq {name} {v} outside 0..255")
    action = (ACT if act else 0) | (GTO if go else 0)
    return [action << 8, position, (speed << 8) | force]


@dataclass(frozen=True)
class RobotiqStatus:
    gACT: int
    gGTO: int
    gSTA: int
    gOBJ: int
    gFLT: int
    gPR: int
    gPO: int
    gCU: int

    @classmethod
    def from_registers(cls, regs: list[int]) -> RobotiqStatus:
        if len(regs) != 3:
            raise ValueError(f"Robotiq status needs 3 registers, got {len(regs)}")
        status = regs[0] >> 8
        return cls(
            gACT=status & 0x01,
            gGTO=(status >> 3) & 0x01,
            gSTA=(status >> 4) & 0x03,
            gOBJ=(status >> 6) & 0x03,
            gFLT=(regs[1] >> 8) & 0x0F,
            gPR=regs[1] & 0xFF,
            gPO=regs[2] >> 8,
            gCU=regs[2] & 0xFF,
        )

    @property
    def active(self) -> bool:
        return self.gACT == 1 and self.gSTA == STA_ACTIVE


@dataclass
class GripperLinkStats:
    polls: int = 0
    requests_sent: int = 0
    link_errors: int = 0
    reconnect_attempts: int = 0
    reconnects: int = 0


class RobotiqGripper:
    """A Robotiq 2F gripper implementing :class:`grasprt.types.Gripper`.

    A background thread owns the port: it writes the newest open/close request (latest
    wins) and polls the status, so ``set_closed``, ``position`` and ``object_held``
    never wait on the serial line. When the port vanishes or the gripper stops
    answering it closes the port and reopens it with a growing backoff, counting the
    attempts.
    """

    name = "robotiq_2f"

    def __init__(
        self,
        port: str,
        slave: int = 9,
        baud: int = 115200,
        speed: int = 255,
        force: int = 100,
        poll_period_s: float = 0.02,
        activation_timeout_s: float = 5.0,
        response_timeout_s: float = 0.05,
        retries: int = 2,
        stale_fault_s: float = 1.0,
        reconnect_backoff_s: float = 0.05,
        reconnect_backoff_max_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        encode_request(True, True, 0, speed, force)  # range-checks speed and force now
        self.port = port
        self.slave = slave
        self.speed = speed
        self.force = force
        self.poll_period_s = poll_period_s
        self.activation_timeout_s = activation_timeout_s
        self.stale_fault_s = stale_fault_s
        self.reconnect_backoff_s = reconnect_backoff_s
        self.reconnect_backoff_max_s = reconnect_backoff_max_s
        self.stats = GripperLinkStats()
        self._clock = clock
        self._bus = ModbusRtuMaster(port, baud, response_timeout_s, retries)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status: RobotiqStatus | None = None
        self._status_time = 0.0
        self._wanted: bool | None = None  # newest request from the loop
        self._sent: bool | None = None  # what the gripper was last told
        self._lost_activation = False
        self._link_down_since: float | None = None

    # -- Gripper interface --------------------------------------------------------

    def connect(self) -> None:
        if self._thread is not None:
            return
        self._lost_activation = False
        self._sent = None
        try:
            self._bus.open()
        except ModbusPortError as err:
            raise DriverError(f"Robotiq gripper: {err}") from None
        try:
            status = self._read_status()
        except ModbusError as err:
            self._bus.close()
            raise DriverError(
                f"Robotiq gripper (slave {self.slave}) on {self.port}: {err}; check its 24 V "
                "supply, the RS-485 wiring and that it is set to 115200 baud"
            ) from None
        if not status.active:
            self._activate()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="robotiq-poll", daemon=True)
        self._thread.start()

    def disconnect(self) -> None:
        # The fingers are left as they are: opening them here would drop a held object.
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(timeout=2.0)
        self._bus.close()

    def set_closed(self, closed: bool) -> None:
        with self._lock:
            self._wanted = bool(closed)
        self._wake.set()

    def position(self) -> float:
        with self._lock:
            status = self._status
        return 0.0 if status is None else status.gPO / 255.0

    def object_held(self) -> bool | None:
        with self._lock:
            status = self._status
        if status is None or status.gOBJ == OBJ_MOVING:
            return None
        return status.gOBJ in (OBJ_CONTACT_OPENING, OBJ_CONTACT_CLOSING)

    def hold(self) -> None:
        """Keep the fingers where the last sent request put them: drop any request not
        yet written, so a hold is never followed by a stale open/close."""
        with self._lock:
            self._wanted = self._sent

    # -- extra state for the arm wrapper and the logs ---------------------------------

    def status(self) -> RobotiqStatus | None:
        with self._lock:
            return self._status

    def fault(self) -> str | None:
        """Why the gripper cannot be trusted now, or None."""
        with self._lock:
            status, status_time = self._status, self._status_time
            lost = self._lost_activation
        if lost:
            return (
                f"Robotiq gripper on {self.port} lost its activation (power cut?); restart "
                "grasprt to activate it again (activation sweeps the fingers)"
            )
        age = self._clock() - status_time
        if status is None or age > self.stale_fault_s:
            return (
                f"Robotiq gripper on {self.port} not answering for {age:.1f} s "
                f"({self.stats.reconnect_attempts} reconnect attempts)"
            )
        if status.gFLT >= MAJOR_FAULT:
            return (
                f"Robotiq gripper fault {status.gFLT:#04x}: "
                f"{FAULT_NAMES.get(status.gFLT, 'unknown')}"
            )
        return None

    # -- the bus thread -------------------------------------------------------------

    def _read_status(self) -> RobotiqStatus:
        status = RobotiqStatus.from_registers(
            self._bus.read_input_registers(self.slave, INPUT_REGISTERS, 3)
        )
        now = self._clock()
        with self._lock:
            self._status = status
            self._status_time = now
        self.stats.polls += 1
        return status

    def _write_request(self, closed: bool, go: bool = True) -> None:
        regs = encode_request(True, go, 255 if closed else 0, self.speed, self.force)
        self._bus.write_multiple_registers(self.slave, OUTPUT_REGISTERS, regs)
        self.stats.requests_sent += 1

    def _activate(self) -> None:
        try:
            # Clearing rACT first resets a gripper left in a fault or half-activated.
            self._bus.write_multiple_registers(
                self.slave, OUTPUT_REGISTERS, encode_request(False, False, 0, 0, 0)
            )
            self._bus.write_multiple_registers(
                self.slave, OUTPUT_REGISTERS, encode_request(True, False, 0, 0, 0)
            )
            deadline = self._clock() + self.activation_timeout_s
            status = self._read_status()
            while not status.active:
                if self._clock() > deadline:
                    raise DriverError(
                        f"Robotiq gripper on {self.port} did not finish activating within "
                        f"{self.activation_timeout_s:g} s (gSTA={status.gSTA}, "
                        f"gFLT={status.gFLT:#04x}); clear the fingers' path and power-cycle it"
                    )
                time.sleep(self.poll_period_s)
                status = self._read_status()
        except ModbusError as err:
            self._bus.close()
            raise DriverError(f"Robotiq gripper on {self.port}: activation failed: {err}") from None
        log.info("Robotiq gripper on %s activated", self.port)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._bus.is_open:
                    self._reconnect()
                    continue
                with self._lock:
                    wanted, sent = self._wanted, self._sent
                if wanted is not None and wanted != sent and not self._lost_activation:
                    self._write_request(wanted)
                    with self._lock:
                        self._sent = wanted
                self._read_status()
            except ModbusError as err:
                self.stats.link_errors += 1
                log.warning("Robotiq gripper link error: %s", err)
                self._bus.close()
                continue
            self._wake.wait(self.poll_period_s)
            self._wake.clear()

    def _reconnect(self) -> None:
        backoff = self.reconnect_backoff_s
        while not self._stop.is_set():
            self.stats.reconnect_attempts += 1
            try:
                self._bus.open()
                status = self._read_status()
            except ModbusError:
                self._bus.close()
                self._stop.wait(backoff)
                backoff = min(2.0 * backoff, self.reconnect_backoff_max_s)
                continue
            self.stats.reconnects += 1
            with self._lock:
                if not status.active:
                    self._lost_activation = True
                # Re-send the newest request: the gripper may have missed the last one.
                self._sent = None
            log.warning("Robotiq gripper on %s reconnected", self.port)
            return
