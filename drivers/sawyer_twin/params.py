"""The parameters a Sawyer puts on its master, which the Intera SDK reads at start-up.

``RobotParams`` reads ``/robot_config/*`` and ``/manifest/robot_class``;
``RobotEnable(versioned=True)`` reads the software version and exits the process
(``sys.exit(1)``) unless it is one that ``settings.VERSIONS_SDK2ROBOT`` lists for the
installed SDK, so the twin reports the first version compatible with that SDK.
"""

from __future__ import annotations

from typing import Any

from grasprt.drivers.sawyer_twin.camera import CAMERA_CONFIG
from grasprt.profiles import SAWYER

# Used when intera_interface is not importable (the robot itself does not need it).
FALLBACK_VERSION = "5.3.0"
VERSION_PARAM = "/manifest/robot_software/version/HLR_VERSION_STRING"


def robot_software_version() -> str:
    try:
        from intera_interface import settings
    except ImportError:
        return FALLBACK_VERSION
    compatible = settings.VERSIONS_SDK2ROBOT.get(settings.SDK_VERSION)
    return compatible[0] if compatible else FALLBACK_VERSION


def robot_params(version: str) -> dict[str, Any]:
    return {
        "/robot_config/assembly_names": ["right", "head", "torso"],
        "/robot_config/right_config/joint_names": list(SAWYER.joint_names),
        "/robot_config/camera_config": CAMERA_CONFIG,
        "/manifest/robot_class": "sawyer",
        VERSION_PARAM: version,
        # Limb.move_to_neutral reads it.
        "/named_poses/right/poses/neutral": list(SAWYER.neutral),
    }


def set_robot_params(rospy: Any, version: str | None = None) -> dict[str, Any]:
    params = robot_params(version or robot_software_version())
    for name, value in params.items():
        rospy.set_param(name, value)
    return params
