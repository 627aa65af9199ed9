"""A kinematic Sawyer with a rendered wrist camera: the default robot, runs anywhere."""
