"""The shared encoder's own topics: the arm's frames, the model view, the camera's
calibration and the shadow, written by a real recorder and read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from test_recorder import _cycle, _frame, _mask, schema_errors

from grasprt.kinematics import Kinematics
from grasprt.profiles import get_profile
from grasprt.runtime.record_messages import quaternion
from grasprt.runtime.record_reader import decode_image, raw_messages, read_record
from grasprt.runtime.record_schema import (
    CAMERA_INFO_TOPIC,
    MODEL_VIEW_TOPIC,
    SHADOW_TOPIC,
    TF_TOPIC,
    TOPICS,
)
from grasprt.runtime.recorder import FlightRecorder
from grasprt.types import Intrinsics

KIN = Kinematics(get_profile("sawyer"))


def _matrix(r: dict[str, float]) -> np.ndarray:
    x, y, z, w = r["x"], r["y"], r["z"], r["w"]
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def test_quaternions_give_back_the_rotations_of_the_arms_frames() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        p = KIN.poses(rng.uniform(-2.5, 2.5, 7))
        for pose in (*p.links, p.hand, p.camera):
            np.testing.assert_allclose(_matrix(quaternion(pose[:3, :3])), pose[:3, :3], atol=1e-9)


def test_the_recorder_writes_tf_model_view_calibration_and_shadow(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    # An 80 x 60 camera into a smaller model camera: a real remap.
    camera = Intrinsics(80, 60, 70.0, 70.0, 39.5, 29.5)
    model = Intrinsics(40, 30, 30.0, 30.0, 19.5, 14.5)
    rec = FlightRecorder(path, frame_every=2, frame_format="png", kin=KIN)
    rec.start({}, t=0.0)
    rec.set_camera(camera, model)
    for k in range(4):
        assert rec.put_shadow(0.1 * k, {"bundle": "b", "skipped": None, "mask_iou": 0.5})
        assert rec.put_cycle(0.1 * k + 0.01, _cycle(k), _mask(k), _frame(k))
    rec.close({})
    by_topic: dict[str, list] = {}
    for topic, _ns, seq, data in raw_messages(path):
        by_topic.setdefault(topic, []).append((seq, data))
    schemas = {s.topic: s.schema for s in TOPICS}
    for topic in (TF_TOPIC, MODEL_VIEW_TOPIC, CAMERA_INFO_TOPIC, SHADOW_TOPIC):
        for _seq, data in by_topic[topic]:
            assert schema_errors(json.loads(data), schemas[topic], topic) == []
    assert [s for s, _ in by_topic[TF_TOPIC]] == [0, 1, 2, 3]
    assert [s for s, _ in by_topic[MODEL_VIEW_TOPIC]] == [0, 2]  # with the frames
    view = decode_image(by_topic[MODEL_VIEW_TOPIC][0][1])
    assert view.shape == (30, 40, 3)
    calib = json.loads(by_topic[CAMERA_INFO_TOPIC][0][1])
    assert (calib["width"], calib["height"], calib["K"][0]) == (80, 60, 70.0)
    tf = json.loads(by_topic[TF_TOPIC][1][1])["transforms"]
    cam = next(t for t in tf if t["child_frame_id"] == "wrist_camera_optical")
    expected = KIN.poses(np.asarray(_cycle(1).q)).camera
    got = [cam["translation"][k] for k in "xyz"]
    np.testing.assert_allclose(got, expected[:3, 3], atol=1e-12)
    record = read_record(path)
    assert [s is not None and s["mask_iou"] == 0.5 for s in record.shadows] == [True] * 4
