"""A Sawyer twin: the robot side of the Intera SDK over ROS, backed by the simulator.

``grasprt twin --robot sawyer`` (grasprt/twin_cmd.py) serves, from one ROS node, what
the real ``intera_interface`` waits for and uses, so the SDK and grasprt's Sawyer
driver run against it unchanged, on the same world, dynamics gap and grasp physics as
``grasprt run --robot sim``:

    node.py          wiring: the threads, the tick, the faults
    params.py        /robot_config/*, /manifest/* (the SDK's version check)
    state.py         RobotAssemblyState rules: enable, stop, reset, e-stop, error (no ROS)
    enable.py        /robot/state, /robot/set_super_enable|reset|stop
    arm.py           position targets, speed ratio, command timeout, gripper (no ROS)
    limb.py          joint_command in; joint_states, endpoint_state, tip_states out
    kin_services.py  the FK and IK services Limb waits for
    poses.py         named frames, quaternions, full-pose IK (no ROS)
    io_device.py     Intera's IO framework (node/device config, state, command, acks)
    gripper.py       the electric gripper's signals on the simulated gripper (no ROS)
    camera.py        the hand camera's image_raw and camera_info, its IO device
    episode.py       world resets (/grasprt_twin/reset, /grasprt/episode_setup), truth
    faults.py        injectable faults (topic and --fault KIND@SECONDS)
    command_log.py   --log: one JSON line per joint command received

rospy and the generated Intera messages are imported only by this package's ROS
modules (and only when the twin runs); the modules marked "no ROS" import anywhere.
"""
