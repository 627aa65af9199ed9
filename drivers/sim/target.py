"""The target sphere: resting, rolling inside the workspace, or held by the hand."""

from __future__ import annotations

import numpy as np


class TargetSphere:
    def __init__(self, radius: float, table_z: float, workspace: tuple[float, ...]) -> None:
        self.radius = radius
        self.rest_z = table_z + radius
        self.x0, self.x1, self.y0, self.y1 = workspace
        self.pos = np.array([0.0, 0.0, self.rest_z])
        self.vel = np.zeros(2)  # rolling velocity on the table, m/s
        # Centre in the hand frame while held; None while on the table.
        self.in_hand: np.ndarray | None = None

    def place(self, xy: tuple[float, float], vel: np.ndarray) -> None:
        self.pos = np.array([xy[0], xy[1], self.rest_z], dtype=np.float64)
        self.vel = np.asarray(vel, dtype=np.float64).copy()
        self.in_hand = None

    @property
    def rolling(self) -> bool:
        return self.in_hand is None and bool(np.any(self.vel))

    def roll(self, dt: float) -> None:
        """Move on the table, bouncing off the workspace edges like a ball off a rail."""
        if not self.rolling:
            return
        p = self.pos[:2] + self.vel * dt
        for axis, lo, hi in ((0, self.x0, self.x1), (1, self.y0, self.y1)):
            if p[axis] < lo:
                p[axis] = min(2 * lo - p[axis], hi)
                self.vel[axis] = abs(self.vel[axis])
            elif p[axis] > hi:
                p[axis] = max(2 * hi - p[axis], lo)
                self.vel[axis] = -abs(self.vel[axis])
        self.pos[:2] = p

    def attach(self, hand: np.ndarray, rel_fingers: np.ndarray, fingertip_offset: float) -> None:
        """Held between the fingers: centred across them, where it was along the pads."""
        self.in_hand = np.array([rel_fingers[0], 0.0, rel_fingers[2] + fingertip_offset])
        self.follow(hand)

    def follow(self, hand: np.ndarray) -> None:
        if self.in_hand is not None:
            self.pos = hand[:3, :3] @ self.in_hand + hand[:3, 3]

    def release(self) -> None:
        """Let go: it drops onto the table where it is, and stays there."""
        self.in_hand = None
        self.pos[2] = self.rest_z
        self.vel[:] = 0.0

    def push(self, shift: np.ndarray) -> None:
        self.pos[:2] += shift
