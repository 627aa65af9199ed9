# The README's two set-up commands: `make demo` and `make test`. Each works from a
# fresh clone: it makes the virtualenv, installs what it needs, then runs.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
OUT    ?= out
ROBOSUITE ?= robosuite==1.5.2
# Evaluations the reference build runs at once (one per core).
JOBS   ?= 2

# grasprt's ROS environment (docs/sawyer.md): Debian 12's ROS 1 for the system Python
# 3.11, the Intera messages generated with genpy into build/ros (never committed), the
# real intera_interface from ../shared/third_party, and a venv that sees both.
ROS_VENV  ?= .venv-ros
ROS_BUILD ?= build/ros
INTERA    ?= ../shared/third_party
ROS_APT   := python3-rospy python3-genpy python3-genmsg python3-rosmaster rosout \
	python3-roslaunch python3-rostopic python3-actionlib python3-dynamic-reconfigure \
	python3-tf python3-tf2-ros python3-sensor-msgs python3-geometry-msgs python3-std-msgs \
	ros-std-msgs ros-geometry-msgs ros-sensor-msgs ros-actionlib-msgs python3-venv

.PHONY: demo test test-ros ros mujoco lint format placeholder reference clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files so a second `make` does not reinstall; they follow pyproject.toml.
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[export,dev,realsense,serial,openvino,mujoco]'
	$(PIP) install --no-deps $(ROBOSUITE)
	touch $@ $(VENV)/.base

# `--robot mujoco` in a venv made by `make demo`: MuJoCo, and robosuite for its Sawyer
# and gripper model files only (no dependencies: see pyproject.toml's mujoco extra).
mujoco: $(VENV)/.base
	$(PIP) install -e '.[mujoco]'
	$(PIP) install --no-deps $(ROBOSUITE)

demo: $(VENV)/.base
	@mkdir -p $(OUT) && rm -f $(OUT)/demo.mcap
	$(BIN)/grasprt run --robot sim --episodes 3 --record $(OUT)/demo.mcap --json $(OUT)/demo.json

test: $(VENV)/.dev ros
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not ros"
	$(MAKE) --no-print-directory test-ros

# The tests over a real ROS master and the real Intera SDK (marked `ros`).
test-ros: ros
	. $(ROS_BUILD)/setup.sh && $(ROS_VENV)/bin/python -m pytest -q -m ros tests/drivers tests/evaluation

ros: $(ROS_VENV)/.ros

$(ROS_VENV)/.ros: pyproject.toml tools/make_ros_env.py
	@if ! command -v roscore >/dev/null || [ ! -e /usr/lib/genpy/genmsg_py.py ]; then \
		echo "make ros: installing Debian's ROS packages (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $(ROS_APT) >/dev/null; \
	fi
	/usr/bin/python3 tools/make_ros_env.py --sdk $(INTERA) --out $(ROS_BUILD)
	/usr/bin/python3 -m venv --system-site-packages $(ROS_VENV)
	$(ROS_VENV)/bin/python -m pip --disable-pip-version-check -q install -e '.[dev,serial]'
	. $(ROS_BUILD)/setup.sh && $(ROS_VENV)/bin/python -c "import rospy, intera_interface, grasprt.runtime.runner"
	touch $@

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Rebuilds the random-weight placeholder bundle (needs the export extra).
placeholder: $(VENV)/.dev
	$(BIN)/python -m grasprt.export.placeholder --out models/placeholder

# The reference bundle's whole recipe, from a clean checkout: segmenter, DAgger, export,
# the evaluations and the model card (~75 min on 2 cores; stages resume from build/),
# then the MuJoCo stage (DAgger continued in both simulators, evaluated in both): two
# rounds as they first ran (an expert without `regrip`), then one round at a time with it.
reference: $(VENV)/.dev
	$(BIN)/python -m grasprt.export.reference.build --out models/reference --seed 0 --jobs $(JOBS)
	$(BIN)/python -m grasprt.export.reference.mujoco_stage --from models/reference --seed 0 --no-regrip --jobs $(JOBS)
	for n in 3 4; do $(BIN)/python -m grasprt.export.reference.mujoco_stage --from models/reference \
	  --work build/mujoco-stage-$$n --seed 0 --rounds 1 --keep-segmenter \
	  --before models/reference/eval-both.json --jobs $(JOBS) || exit 1; done
	$(BIN)/python -m grasprt.export.reference.mujoco_stage --from models/reference \
	  --work build/mujoco-stage-5 --seed 0 --rounds 1 --keep-segmenter --gripper-weight 4 \
	  --before models/reference/eval-both.json --jobs $(JOBS)

clean:
	rm -rf $(VENV) $(ROS_VENV) $(ROS_BUILD) $(OUT) .pytest_cache .ruff_cache *.egg-info
