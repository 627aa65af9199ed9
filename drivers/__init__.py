"""Cameras and robots behind the small interfaces in grasprt.types."""
