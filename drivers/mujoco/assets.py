"""Where MuJoCo and robosuite's Sawyer assets are, found without importing robosuite.

robosuite's wheel brings environments and `opencv-python` (which clashes with the
`opencv-python-headless` grasprt uses); only its MJCF files and meshes are needed, so it
is installed without its dependencies (`make mujoco`) and located by `find_spec`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from grasprt.errors import ConfigError

INSTALL = (
    "make mujoco (pip install 'mujoco>=3.3' and pip install --no-deps robosuite==1.5.2, "
    "plus Debian's libegl1 libgl1-mesa-dri for MuJoCo's own renderer)"
)
ROBOT_XML = "models/assets/robots/sawyer/robot.xml"
GRIPPER_XML = "models/assets/grippers/rethink_gripper.xml"


def import_mujoco() -> ModuleType:
    try:
        import mujoco
    except ImportError as e:
        raise ConfigError(f"--robot mujoco needs MuJoCo ({e}): {INSTALL}") from None
    return mujoco


def robosuite_assets() -> tuple[Path, Path]:
    """robot.xml and rethink_gripper.xml of the installed robosuite package."""
    spec = importlib.util.find_spec("robosuite")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"--robot mujoco needs robosuite's Sawyer model files: {INSTALL}")
    root = Path(next(iter(spec.submodule_search_locations)))
    robot, gripper = root / ROBOT_XML, root / GRIPPER_XML
    for path in (robot, gripper):
        if not path.is_file():
            raise ConfigError(f"--robot mujoco: {path} is missing from robosuite: {INSTALL}")
    return robot, gripper
