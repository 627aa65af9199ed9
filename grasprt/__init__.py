"""grasprt: a runtime for learned, vision-based grasping controllers."""

__version__ = "0.1.0"
