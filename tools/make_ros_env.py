"""Generate the Intera message packages with Debian's genpy, for `make ros`.

Run by the system interpreter (/usr/bin/python3, where Debian's genpy lives):

    /usr/bin/python3 tools/make_ros_env.py --sdk ../shared/third_party --out build/ros

It writes, under OUT (never committed):

    py/intera_core_msgs, py/intera_motion_msgs   the generated Python message packages
    py/cv_bridge                                 see CV_BRIDGE below
    setup.sh                                     PYTHONPATH and ROS_PACKAGE_PATH, as a
                                                 sourced catkin workspace sets them

On a robot PC with a catkin workspace none of this is needed: sourcing the workspace's
devel/setup.bash puts the same packages on the same paths.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

GENMSG = "/usr/lib/genpy/genmsg_py.py"
GENSRV = "/usr/lib/genpy/gensrv_py.py"
GENACTION = "/usr/lib/actionlib_msgs/genaction.py"
STANDARD = ("std_msgs", "geometry_msgs", "sensor_msgs", "actionlib_msgs")
PACKAGES = ("intera_core_msgs", "intera_motion_msgs")

# intera_interface imports cv_bridge once, in head_display (the Sawyer's head screen,
# which grasprt never uses). Debian's cv_bridge is built against numpy 1.x and fails to
# import beside the numpy 2 that OpenCV 5 and onnx need, so this stands in for it: it
# imports, and any use says why it cannot work here. Nothing grasprt does calls it.
CV_BRIDGE = '''"""Stand-in for cv_bridge (grasprt's ROS environment, tools/make_ros_env.py).

Only intera_interface.head_display imports it; grasprt never shows images on the head.
"""


class CvBridgeError(Exception):
    pass


class CvBridge:
    def __init__(self, *args, **kwargs):
        raise CvBridgeError(
            "cv_bridge is not available in grasprt's ROS environment (Debian's build "
            "needs numpy 1.x); the head display is not supported"
        )
'''


def run(*cmd: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"make_ros_env: {' '.join(cmd[:3])} ...: {proc.stderr.strip() or proc.stdout}")


def generate(sdk: Path, out: Path) -> None:
    common = sdk / "intera_common"
    src = out / "msg_src"
    py = out / "py"
    for pkg in PACKAGES:
        msg_dir = src / pkg / "msg"
        msg_dir.mkdir(parents=True, exist_ok=True)
        for msg in sorted((common / pkg / "msg").glob("*.msg")):
            shutil.copy(msg, msg_dir)
        for action in sorted((common / pkg / "action").glob("*.action")):
            # One .action file is seven messages (goal, result, feedback and their
            # action wrappers): actionlib's generator writes them.
            run(sys.executable, GENACTION, "-o", str(msg_dir), str(action))
    includes = [f"{p}:/usr/share/{p}/msg" for p in STANDARD]
    includes += [f"{p}:{src / p / 'msg'}" for p in PACKAGES]
    flags = [arg for inc in includes for arg in ("-I", inc)]
    for pkg in PACKAGES:
        msgs = sorted((src / pkg / "msg").glob("*.msg"))
        run(sys.executable, GENMSG, "-p", pkg, "-o", str(py / pkg / "msg"), *flags, *map(str, msgs))
        run(sys.executable, GENMSG, "--initpy", "-p", pkg, "-o", str(py / pkg / "msg"))
        srvs = sorted((common / pkg / "srv").glob("*.srv"))
        if srvs:
            run(
                sys.executable,
                GENSRV,
                "-p",
                pkg,
                "-o",
                str(py / pkg / "srv"),
                *flags,
                *map(str, srvs),
            )
            run(sys.executable, GENSRV, "--initpy", "-p", pkg, "-o", str(py / pkg / "srv"))
        (py / pkg / "__init__.py").touch()
    (py / "cv_bridge").mkdir(parents=True, exist_ok=True)
    (py / "cv_bridge" / "__init__.py").write_text(CV_BRIDGE)


def write_setup(sdk: Path, out: Path) -> None:
    sdk_src = sdk / "intera_sdk" / "intera_interface" / "src"
    paths = f"{out / 'py'}:{sdk_src}"
    packages = f"{sdk / 'intera_common'}:{sdk / 'intera_sdk'}"
    (out / "setup.sh").write_text(
        "# grasprt's ROS environment (make ros): what a sourced catkin workspace sets.\n"
        f'export PYTHONPATH="{paths}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        f'export ROS_PACKAGE_PATH="{packages}${{ROS_PACKAGE_PATH:+:$ROS_PACKAGE_PATH}}"\n'
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sdk", type=Path, required=True, help="folder with intera_sdk, intera_common")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    sdk, out = args.sdk.resolve(), args.out.resolve()
    for need in (GENMSG, GENSRV, GENACTION):
        if not Path(need).exists():
            sys.exit(
                f"make_ros_env: {need} missing: apt-get install python3-genpy python3-actionlib"
            )
    if not (sdk / "intera_common").is_dir():
        sys.exit(f"make_ros_env: no intera_common in {sdk}")
    if out.exists():
        shutil.rmtree(out)
    generate(sdk, out)
    write_setup(sdk, out)
    print(f"make_ros_env: {out / 'py'} and {out / 'setup.sh'} written")


if __name__ == "__main__":
    main()
