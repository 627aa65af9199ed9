"""The Sawyer in MuJoCo: robosuite's arm and Rethink gripper, contact physics, a joint servo.

    assets.py   where MuJoCo and robosuite's model files are, or one line saying what to install
    scene.py    the MJCF scene: arm on a mount, gripper, table, sphere and clutter (free bodies)
    servo.py    the arm's joint-position servo (the robot's 1 kHz loop) and the gripper's sensing
    world.py    MujocoWorld: the simulator's world interface on MuJoCo's physics
    kind.py     `--robot mujoco`: its settings ([mujoco]) and drivers
"""
